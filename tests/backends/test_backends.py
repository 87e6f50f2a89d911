"""The same behaviour from local, pg and etcd: compare-and-swap writes, locks
that name their holder and die with it, force-unlock, push and pull."""

import json
import uuid

import pytest

from benchmarks.backend_plan import measure, write_json
from l4plan.config.variables import VariableInputs
from l4plan.state import LockIdMismatch, NewerStateFormat, NotLocked, Resource, StaleState, State, StateLocked, encode
from l4plan.validate import load_config

ANOTHER, KEPT = str(uuid.uuid4()), str(uuid.uuid4())

HOLD = """
with backend.lock("apply") as info:
    print(info.id, flush=True)
    sys.stdin.read()
"""

ADD = """
prefix, count = sys.argv[3], int(sys.argv[4])
for i in range(count):
    new = Resource.at(f"application.{prefix}{i}", {"n": i})
    backend.update(lambda s: s.with_resource(new), "apply", 60)
print("done", flush=True)
"""


def app(name, **attributes):
    return Resource.at(f"application.{name}", {"domain": f"{name}.example.com", **attributes})


def test_nothing_stored_is_the_empty_state_and_a_write_reads_back(backends):
    backend = backends.open()
    empty = backend.read()
    assert empty.state == State.empty()
    written = backend.write(empty, empty.state.with_resource(app("game")))
    again = backend.read()
    assert again.state == written.state and again.version == written.version
    assert again.state.serial == 1 and again.state.lineage
    assert backend.write(again, again.state.with_resource(app("game"))) == again


def test_a_write_from_a_stale_read_is_refused(backends):
    backend = backends.open()
    base = backend.read()
    first = backend.write(base, base.state.with_resource(app("a")))
    with pytest.raises(StaleState, match="changed since it was read"):
        backend.write(base, base.state.with_resource(app("b")))
    assert backend.read().state == first.state


def test_a_second_locker_is_told_who_holds_the_lock_and_where(backends):
    settings = backends.settings()
    first, second = backends.open(settings), backends.open(settings)
    with first.lock("apply") as held:
        with pytest.raises(StateLocked) as caught:
            second.acquire("plan", 0.2)
        assert caught.value.holder == held
        message = str(caught.value)
        assert held.describe() in message and first.describe() in message
        assert f'l4plan force-unlock {held.id}' in message
        assert second.read_lock() == held
    assert second.read_lock() is None
    with second.lock("plan"):
        pass


def test_force_unlock_needs_the_right_id(backends):
    settings = backends.settings()
    holder, other = backends.open(settings), backends.open(settings)
    with pytest.raises(NotLocked):
        other.force_unlock("nope")
    info = holder.acquire("apply")
    with pytest.raises(LockIdMismatch, match=f"has ID {info.id}, not nope"):
        other.force_unlock("nope")
    assert other.force_unlock(info.id) == info
    with other.lock("apply"):
        pass


def test_a_write_after_a_forced_unlock_still_cannot_lose_an_update(backends):
    """The lock of a slow holder is forced away and another run writes: the
    slow holder's write from its old read is refused."""
    settings = backends.settings()
    slow, fast = backends.open(settings), backends.open(settings)
    info = slow.acquire("apply")
    base = slow.read()
    fast.force_unlock(info.id)
    with fast.lock("apply"):
        fast.write(fast.read(), base.state.with_resource(app("fast")))
    with pytest.raises(StaleState):
        slow.write(base, base.state.with_resource(app("slow")))
    assert list(fast.read().state.resources) == ["application.fast"]


def test_a_killed_holders_lock_dies_with_it(backends, script):
    """SIGKILL the holder: the next locker gets the lock within lock_ttl, no force-unlock."""
    settings = backends.settings()
    holder = script(HOLD, settings)
    lock_id = holder.stdout.readline().strip()
    assert lock_id, holder.stderr.read()
    backend = backends.open(settings)
    assert backend.read_lock().id == lock_id
    holder.kill()
    holder.wait(timeout=10)
    with backend.lock("apply", 10) as info:
        assert backend.read_lock() == info


def test_two_racing_writers_lose_no_update(backends, script):
    """Two processes add 20 resources each under the lock: all 40 are there,
    and the serial rose by exactly one per change."""
    settings = backends.settings()
    writers = [script(ADD, settings, prefix, "20") for prefix in ("a", "b")]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert (writer.returncode, out) == (0, "done\n"), err
    state = backends.open(settings).read().state
    assert len(state.resources) == 40 and state.serial == 40


def test_a_stored_state_of_a_newer_format_is_one_clear_error(backends):
    backend = backends.open()
    base = backend.read()
    newer = {**json.loads(encode(State.empty())), "format_version": 99, "lineage": "x", "l4plan_version": "9.0"}
    backend._store(base, State.empty(), json.dumps(newer).encode())
    with pytest.raises(NewerStateFormat) as caught:
        backend.read()
    assert str(caught.value).startswith(f"{backend.describe()} has state format 99, written by l4plan 9.0")


# --- through the CLI -----------------------------------------------------------


def configure(backends, settings):
    (backends.directory / "backend.l4.hcl").write_text(backends.block(settings))


def test_state_commands_go_through_the_configured_backend(backends, cli, monkeypatch):
    settings = backends.settings()
    configure(backends, settings)
    monkeypatch.chdir(backends.directory)
    backend = backends.open(settings)
    base = backend.read()
    backend.write(base, base.state.with_resources([app("a"), app("b")]))
    assert cli("state", "list").stdout == "application.a\napplication.b\n"
    assert cli("state", "mv", "application.a", "application.c").exit_code == 0
    assert cli("state", "rm", "application.b").exit_code == 0
    assert list(backend.read().state.resources) == ["application.c"]
    pulled = cli("state", "pull")
    assert json.loads(pulled.stdout) == backend.read().state.to_dict()
    with backend.lock("apply") as held:
        locked = cli("state", "rm", "application.c")
        assert locked.exit_code == 1 and held.id in locked.stderr
        where = settings.attributes["path"] if backends.kind == "local" else backend.describe()
        assert f"({where}, waited 0s)" in locked.stderr
        assert cli("force-unlock", held.id, "--force").exit_code == 0
    assert backend.read_lock() is None


def test_push_refuses_another_lineage_and_an_old_serial_unless_forced(backends, cli, monkeypatch, tmp_path):
    settings = backends.settings()
    configure(backends, settings)
    monkeypatch.chdir(backends.directory)
    backend = backends.open(settings)
    base = backend.read()
    current = backend.write(base, base.state.with_resource(app("a"))).state
    other = tmp_path / "other.json"
    other.write_bytes(encode(State(lineage=ANOTHER, serial=5).with_resource(app("z"))))
    refused = cli("state", "push", other)
    assert refused.exit_code == 1 and "lineage" in refused.stderr
    old = tmp_path / "old.json"
    old.write_bytes(encode(current))
    refused = cli("state", "push", old)
    assert refused.exit_code == 1 and "serial 1 stored, 1 being written" in refused.stderr
    assert backend.read().state == current
    forced = cli("state", "push", other, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert list(backend.read().state.resources) == ["application.z"]
    assert backend.read().state.lineage == ANOTHER


def test_a_move_from_local_keeps_the_state_exactly(backends, cli, monkeypatch, tmp_path):
    """pull from local, change the backend block, push: the same lineage, serial and resources."""
    monkeypatch.chdir(backends.directory)
    local = tmp_path / "l4plan.state.json"
    local.write_bytes(encode(State(lineage=KEPT, serial=3).with_resource(app("a"))))
    pulled = cli("state", "pull")
    (tmp_path / "pulled.json").write_text(pulled.stdout)
    settings = backends.settings()
    configure(backends, settings)
    pushed = cli("state", "push", tmp_path / "pulled.json")
    assert pushed.exit_code == 0, pushed.stderr
    moved = backends.open(settings).read().state
    assert (moved.lineage, moved.serial, list(moved.resources)) == (KEPT, 4, ["application.a"])


def test_the_backend_benchmark_runs_on_every_backend(backends):
    """benchmarks.backend_plan measures a no-change plan; here on 2 applications, once."""

    write_json(backends.directory, 2, 3)
    config = load_config(backends.directory, VariableInputs())
    assert measure(backends.settings(), backends.directory, config, 1) > 0
