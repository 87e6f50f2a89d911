"""The built-in ``runtime`` provider: l4plan's own proxy runtime, over its admin API.

``read()`` is ``GET /v1/config``. ``apply()`` sends the whole desired document
in one ``PUT /v1/config`` with ``If-Match`` set to the generation it checked,
and the runtime applies it all or nothing. Before sending, it checks that the
runtime still runs what the plan was made against, so an apply never
overwrites a change made behind l4plan's back that the plan did not show.

With ``autostart`` (the embedded default) a local runtime is started in the
background when none answers on the admin address.
"""

import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from l4plan.model import DATA_DIR, PID_FILE
from l4plan.providers.admin_client import AdminClient, AdminError, NoAnswer, Unreachable, parse_endpoint
from l4plan.providers.base import OutcomeUnknown, Provider, ProviderError
from l4plan.providers.runtime_document import build_document, check_unchanged_since, read_document
from l4plan.schema import block_defaults
from l4plan.tls import client_context

START_TIMEOUT = 15.0
TOKEN_VARIABLE = "L4PLAN_RUNTIME_TOKEN"


class RuntimeProvider(Provider):
    SETTINGS = frozenset({"admin", "token_file", "autostart", "ca_file", "cert_file", "key_file"})
    READS = frozenset({"application", "load_balancer", "ip_access_rule"})

    def __init__(self, name, settings, workdir):
        settings = {**block_defaults("provider", "runtime"), **settings}
        super().__init__(name, settings, workdir)
        self.admin = settings["admin"]
        self.endpoint = _checked_endpoint(self.admin)
        self.token_path = Path(workdir, settings["token_file"])
        self.autostart = settings["autostart"] and not self.admin.startswith("https://")
        self._tls = None
        if self.admin.startswith("https://"):
            files = (Path(workdir, settings[k]) if settings.get(k) else None for k in ("ca_file", "cert_file", "key_file"))
            try:
                self._tls = client_context(*files)
            except ValueError as error:
                raise ProviderError(f"{error}; fix ca_file, cert_file or key_file in the provider block") from None
        self._client = None

    # --- Provider ------------------------------------------------------------

    def _read(self):
        with _talking():
            generation, document = self.current()
        return read_document(document)

    def _apply(self, plan, desired):
        with _talking():
            generation, document = self.current()
            running = read_document(document)
            check_unchanged_since(plan, running, self.READS, "the runtime")
            unmanaged = {a: running[a] for a in plan.unmanaged if a in running}
            try:
                answer = self.client().request(
                    "PUT",
                    "/v1/config",
                    build_document({**unmanaged, **desired}),
                    {"If-Match": str(generation)},
                )
            except NoAnswer as error:
                raise OutcomeUnknown(str(error)) from None
        self._check_token(answer)
        if answer.status == 409:
            raise ProviderError(
                f"the runtime on {self.admin} was changed by someone else during this apply "
                f"(generation {generation} is gone); run plan again"
            )
        if answer.status != 200:
            hint = (
                "; free the port or change the rule, then apply again"
                if answer.body.get("failed")
                else ""
            )
            raise ProviderError(
                f"the runtime on {self.admin} refused the change: {_reasons(answer)}{hint}"
            )
        identity = {"admin": self.admin, "generation": answer.body.get("generation")}
        return {address: identity for address in desired if address.partition(".")[0] in self.READS}

    def open_connections(self):
        """Open connections and sessions per rule, from ``GET /v1/status``."""
        with _talking():
            status = self._get("/v1/status")
        return {key: counters["active"] for key, counters in status["rules"].items()}

    # --- the runtime ---------------------------------------------------------

    def current(self):
        """``(generation, document)`` the runtime serves now."""
        body = self._get("/v1/config")
        return body["generation"], body["config"]

    def _get(self, path):
        """The JSON body of ``GET path``; anything but 200 is a ProviderError."""
        answer = self.client().request("GET", path)
        self._check_token(answer)
        if answer.status != 200:
            raise ProviderError(
                f"the runtime on {self.admin} answered GET {path} with {answer.status}: {_reasons(answer)}"
            )
        return answer.body

    def admin_client(self, timeout=30.0):
        """A client of the runtime as this block names it, whether it answers or
        not (`runtime status`, `runtime restart`); nothing is started."""
        return AdminClient(self.admin, self._token(create=False), timeout=timeout, tls=self._tls)

    def client(self):
        """The admin client, once the runtime answers (started here if allowed)."""
        if self._client is None:
            client = AdminClient(self.admin, self._token(), tls=self._tls)
            try:
                client.request("GET", "/healthz")
            except Unreachable:
                self._start_or_fail(client)
            self._client = client
        return self._client

    def _check_token(self, answer):
        """A 401 is the token's fault: say where the token came from."""
        if answer.status == 401:
            source = f"${TOKEN_VARIABLE}" if os.environ.get(TOKEN_VARIABLE) else str(self.token_path)
            raise ProviderError(
                f"the runtime on {self.admin} refused the admin token from {source}; "
                "set token_file to the file the runtime was started with (--token-file)"
            )

    def _token(self, create=True):
        """Over TCP: $L4PLAN_RUNTIME_TOKEN (how CI passes secrets), else the token
        file (made now when ``create`` and the runtime is started here)."""
        if self.endpoint[0] == "unix":
            return None
        if os.environ.get(TOKEN_VARIABLE):
            return os.environ[TOKEN_VARIABLE].strip()
        if create and not self.token_path.exists() and self.autostart:
            self.token_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
        try:
            return self.token_path.read_text().strip()
        except OSError as error:
            raise ProviderError(
                f"cannot read the admin token {self.token_path}: {error.strerror}; "
                "set token_file in the provider block to the runtime's token file"
            ) from None

    def _start_or_fail(self, client):
        if not self.autostart:
            raise ProviderError(
                f"no runtime answers on {self.admin}; start one with "
                f"`l4plan runtime serve --admin {_serve_admin(self.endpoint)}` or set autostart = true"
            )
        process, log = start_local_runtime(self.workdir, self.endpoint, self.token_path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if client.healthy():
                self.progress(
                    f"l4plan: started a local runtime (pid {process.pid}) on {self.admin}; "
                    f"log: {log}; stop it with `l4plan runtime stop`"
                )
                return
            time.sleep(0.1)
        raise ProviderError(
            f"the local runtime did not start on {self.admin}; see {log}:\n"
            + "\n".join(filter(None, (_tail(log.with_suffix(".out")), _tail(log))))
        )


def start_local_runtime(workdir, endpoint, token_path):
    """Start ``l4plan runtime serve`` in the background; ``(process, log path)``.

    Its data, pid file and log live in ``.l4plan/`` of the working directory.
    """
    data_dir = Path(workdir, DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "runtime.log"
    command = [sys.executable, "-m", "l4plan", "runtime", "serve", "--data-dir", str(data_dir)]
    command += ["--admin", _serve_admin(endpoint), "--log-file", str(log)]
    command += ["--pid-file", str(data_dir / PID_FILE)]
    if endpoint[0] == "tcp":
        command += ["--token-file", str(token_path)]
    # What the process prints before its log starts (and "ready"): this run's only.
    with open(log.with_suffix(".out"), "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def _serve_admin(endpoint):
    return f"unix:{endpoint[1]}" if endpoint[0] == "unix" else f"tcp:{endpoint[1]}:{endpoint[2]}"


def _checked_endpoint(admin):
    try:
        return parse_endpoint(admin)
    except AdminError as error:
        raise ProviderError(f"{error}; fix admin in the provider block") from None


@contextmanager
def _talking():
    """Errors of the connection to the runtime as ProviderErrors, which the CLI reports."""
    try:
        yield
    except AdminError as error:
        raise ProviderError(str(error)) from None


def _reasons(answer):
    body = answer.body
    reasons = body.get("reasons") or body.get("failed") or []
    text = body.get("error") or body.get("text") or str(answer.status)
    return "; ".join([text, *map(str, reasons)])


def _tail(path, lines=20):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
