"""Faults of the servers behind pg and etcd: one clear line naming the
backend, nothing written, no password shown; a leader killed mid-write."""

import threading
import uuid

import pytest

from l4plan import etcd
from l4plan.model import Settings
from l4plan.state import Resource, State, StateError, encode, open_backend
from tests.processes import started
from tests.servers import PG_PASSWORD, Etcd, free_port


def app(name):
    return Resource.at(f"application.{name}", {"domain": f"{name}.example.com"})


def error_of(settings, tmp_path, call=lambda b: b.read()):
    backend = open_backend(settings, tmp_path)
    try:
        with pytest.raises(StateError) as caught:
            call(backend)
    finally:
        backend.close()
    return str(caught.value)


# --- pg ---------------------------------------------------------------------------


def test_pg_wrong_password_is_one_line_without_the_password(postgres, tmp_path):
    url = postgres.url.replace(PG_PASSWORD, "not-the-password")
    message = error_of(Settings("pg", {"conn_str": url}), tmp_path)
    assert message.startswith(f'backend "pg" (host=127.0.0.1 port={postgres.port} dbname=postgres user=postgres, schema l4plan, state default): cannot connect')
    assert "password authentication failed" in message
    assert "not-the-password" not in message and "\n" not in message


def test_pg_unreachable_names_the_endpoint(tmp_path):
    port = free_port()
    url = f"postgresql://l4plan:pw-unseen@127.0.0.1:{port}/l4plan"
    message = error_of(Settings("pg", {"conn_str": url}), tmp_path)
    assert f"host=127.0.0.1 port={port}" in message and "cannot connect" in message
    assert "pw-unseen" not in message


def test_pg_conn_str_from_the_environment(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("PG_CONN_STR", postgres.url)
    backend = open_backend(Settings("pg", {"name": "from-env"}), tmp_path)
    try:
        base = backend.read()
        assert backend.write(base, base.state.with_resource(app("a"))).state.serial == 1
    finally:
        backend.close()


def test_pg_skip_schema_creation_with_no_tables_says_what_to_do(postgres, tmp_path):
    settings = Settings("pg", {"conn_str": postgres.url, "schema_name": "absent", "skip_schema_creation": True})
    message = error_of(settings, tmp_path)
    assert "the tables absent.states and absent.locks do not exist and skip_schema_creation is set" in message


def test_pg_schemas_keep_states_apart(postgres, tmp_path):
    """Two schemas (and two names in one) hold separate states and locks."""
    made = [open_backend(Settings("pg", {"conn_str": postgres.url, "schema_name": s, "name": n}), tmp_path)
            for s, n in (("team_a", "prod"), ("team_b", "prod"), ("team_a", "staging"))]
    try:
        with made[0].lock("apply"), made[1].lock("apply"), made[2].lock("apply"):
            for i, backend in enumerate(made):
                base = backend.read()
                backend.write(base, base.state.with_resource(app(f"x{i}")))
        assert [list(b.read().state.resources) for b in made] == [["application.x0"], ["application.x1"], ["application.x2"]]
    finally:
        for backend in made:
            backend.close()


@pytest.mark.processes
def test_pg_restarted_between_reads_is_one_error_then_works(postgres, tmp_path):
    backend = open_backend(Settings("pg", {"conn_str": postgres.url, "name": "restart"}), tmp_path)
    try:
        base = backend.read()
        postgres.restart()
        with pytest.raises(StateError, match="cannot write the state"):
            backend.write(base, base.state.with_resource(app("a")))
        assert backend.read().state == base.state
        written = backend.write(backend.read(), base.state.with_resource(app("a")))
        assert backend.read() == written
    finally:
        backend.close()


# --- etcd -------------------------------------------------------------------------


def test_etcd_unreachable_names_every_endpoint(tmp_path):
    ports = [free_port(), free_port()]
    endpoints = [f"http://127.0.0.1:{p}" for p in ports]
    message = error_of(Settings("etcd", {"endpoints": endpoints}), tmp_path)
    assert message.startswith(f'backend "etcd" ({", ".join(endpoints)}, key /l4plan/state/default): cannot read the state: no endpoint answered')
    assert all(e in message for e in endpoints) and "\n" not in message


def test_etcd_one_member_down_is_not_an_error(etcd_server, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    backend = open_backend(Settings("etcd", {"endpoints": [down, *etcd_server.endpoints], "name": "failover"}), tmp_path)
    with backend.lock("apply"):
        base = backend.read()
        assert backend.write(base, base.state.with_resource(app("a"))).state.serial == 1
    backend.close()


@pytest.fixture(scope="module")
def etcd_with_auth():
    server = started(Etcd)
    name = server.names[0]
    server.call(name, "auth/role/add", {"name": "root"})
    server.call(name, "auth/user/add", {"name": "root", "password": "root-pw"})
    server.call(name, "auth/user/grant", {"user": "root", "role": "root"})
    server.call(name, "auth/enable", {})
    yield server
    server.close()


def test_etcd_with_auth_works_and_a_wrong_password_is_clear(etcd_with_auth, tmp_path):
    settings = {"endpoints": etcd_with_auth.endpoints, "username": "root"}
    backend = open_backend(Settings("etcd", {**settings, "password": "root-pw"}), tmp_path)
    with backend.lock("apply"):
        base = backend.read()
        assert backend.write(base, base.state.with_resource(app("a"))).state.serial == 1
    backend.close()
    message = error_of(Settings("etcd", {**settings, "password": "wrong-pw"}), tmp_path)
    assert "authentication failed" in message and "wrong-pw" not in message


@pytest.mark.processes
def test_etcd_leader_killed_during_applies_leaves_old_or_new_state(tmp_path):
    """Three members; writers keep applying while the leader is SIGKILLed: each
    write succeeds or fails cleanly, and the state read after is whole and
    holds every write that succeeded."""
    cluster = started(Etcd, 3)
    try:
        settings = Settings("etcd", {"endpoints": cluster.endpoints, "name": "leader", "lock_ttl": "2s"})
        done, failures = [], []

        def writer():
            backend = open_backend(settings, tmp_path)
            for i in range(30):
                try:
                    new = app(f"a{i}")
                    backend.update(lambda s: s.with_resource(new), "apply", 10)
                    done.append(new.address)
                except StateError as error:
                    failures.append(str(error))
            backend.close()

        thread = threading.Thread(target=writer)
        thread.start()
        while len(done) < 5 and thread.is_alive():
            thread.join(0.01)
        cluster.kill(cluster.leader())
        thread.join(120)
        assert not thread.is_alive()
        state = open_backend(settings, tmp_path).read().state
        assert set(done) <= set(state.resources)
        assert len(done) + len(failures) == 30 and len(done) > 5
        assert all("backend \"etcd\"" in f for f in failures)
    finally:
        cluster.close()


@pytest.mark.processes
def test_etcd_keeps_a_thousand_applications_of_thirty_rules(etcd_server, tmp_path):
    """As JSON they pass etcd's 1.5 MiB request limit; stored gzipped they fit."""
    rules = [{"protocol": "tcp", "edge_port": str(7000 + r), "origin": f"10.0.{r}.7", "origin_port": str(17000 + r)} for r in range(30)]
    apps = [Resource.at(f"application.a{i}", {"domain": f"a{i}.example.com", "rules": rules}) for i in range(1000)]
    backend = open_backend(Settings("etcd", {"endpoints": etcd_server.endpoints, "name": "big"}), tmp_path)
    with backend.lock("apply"):
        base = backend.read()
        written = backend.write(base, base.state.with_resources(apps))
    assert len(encode(written.state)) > 1_572_864
    assert backend.read().state == written.state
    backend.close()


def test_etcd_reads_a_state_put_as_plain_json(etcd_server, tmp_path):
    backend = open_backend(Settings("etcd", {"endpoints": etcd_server.endpoints, "name": "plain"}), tmp_path)
    state = State(lineage=str(uuid.uuid4()), serial=2).with_resource(app("a"))
    backend.client.txn([], [etcd.put(backend.key, encode(state))])
    assert backend.read().state == state
    backend.close()
