"""A provider for the engine tests, found through the ``l4plan.providers`` entry point.

Its "remote" is a JSON file of applications (``remote`` setting, relative to
the configuration directory), so read, apply, drift and import are real
across processes. Environment variables steer it:

- ``L4PLAN_FAKE_FAIL``: apply raises ProviderError with this text, changing nothing;
- ``L4PLAN_FAKE_HOLD``: apply creates ``HOLD.applying`` and waits (at most
  20 s) for ``HOLD.release`` to exist, so a test can hold the state lock;
- ``L4PLAN_FAKE_STARTED``: the provider creates this file when it is made,
  just before the command takes the state lock.
"""

import json
import os
import time
from pathlib import Path

from l4plan.providers.base import Provider, ProviderError

HOLD_LIMIT_SECONDS = 20


class FakeProvider(Provider):
    SETTINGS = frozenset({"remote"})

    def __init__(self, *args):
        super().__init__(*args)
        started = os.environ.get("L4PLAN_FAKE_STARTED")
        if started:
            Path(started).touch()

    @property
    def remote(self):
        return Path(self.workdir, self.settings.get("remote", "remote.json"))

    def _read(self):
        if not self.remote.exists():
            return {}
        return json.loads(self.remote.read_text())["applications"]

    def _apply(self, plan, desired):
        failure = os.environ.get("L4PLAN_FAKE_FAIL")
        if failure:
            raise ProviderError(failure)
        _hold(os.environ.get("L4PLAN_FAKE_HOLD"))
        generation = self._generation() + 1
        applications = {
            address: {k: v for k, v in attributes.items() if k != "prevent_destroy"}
            for address, attributes in desired.items()
            if address.startswith("application.")
        }
        document = {"generation": generation, "applications": applications}
        temporary = self.remote.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=2, sort_keys=True))
        os.replace(temporary, self.remote)
        return {
            a: {"id": a.partition(".")[2], "generation": generation}
            for a in applications
        }

    def _generation(self):
        if not self.remote.exists():
            return 0
        return json.loads(self.remote.read_text())["generation"]


def _hold(base):
    if not base:
        return
    Path(f"{base}.applying").write_text(str(os.getpid()))
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not Path(f"{base}.release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
