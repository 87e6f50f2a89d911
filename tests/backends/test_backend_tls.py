"""The etcd backend over https with client-certificate authentication."""

import pytest

from l4plan.model import Settings
from l4plan.state import Resource, StateError, open_backend
from l4plan.state.pg import encrypted_off_loopback
from tests.processes import started
from tests.servers import Etcd, write_certificates


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory):
    directory = write_certificates(tmp_path_factory.mktemp("etcd-tls"))
    server = started(Etcd, 1, directory)
    yield server, directory
    server.close()


def test_the_etcd_backend_over_mutual_tls(tls_etcd, tmp_path):
    server, certs = tls_etcd
    files = {"ca_file": f"{certs}/ca.pem", "cert_file": f"{certs}/client.pem", "key_file": f"{certs}/client.key"}
    backend = open_backend(Settings("etcd", {"endpoints": server.endpoints, **files}), tmp_path)
    with backend.lock("apply"):
        base = backend.read()
        written = backend.write(base, base.state.with_resource(Resource.at("application.a", {"domain": "a.example.com"})))
    assert backend.read() == written
    backend.close()


@pytest.mark.parametrize("files", [{}, {"ca_file": "ca.pem"}], ids=["no CA", "no client certificate"])
def test_the_etcd_backend_without_the_right_files_is_one_clear_error(tls_etcd, tmp_path, files):
    server, certs = tls_etcd
    files = {k: f"{certs}/{v}" for k, v in files.items()}
    backend = open_backend(Settings("etcd", {"endpoints": server.endpoints, **files}), tmp_path)
    with pytest.raises(StateError) as caught:
        backend.read()
    message = str(caught.value)
    assert message.startswith(f'backend "etcd" ({server.endpoints[0]}, key /l4plan/state/default): cannot read the state')
    if "ca_file" in files:
        assert "the TLS handshake failed" in message and "set cert_file and key_file" in message
    else:
        assert "its TLS certificate is not trusted (unable to get local issuer certificate); set ca_file" in message
    assert "\n" not in message


def test_a_missing_tls_file_of_the_etcd_backend_is_named(tmp_path):
    with pytest.raises(StateError) as caught:
        open_backend(Settings("etcd", {"endpoints": ["https://127.0.0.1:2379"], "ca_file": "missing.pem"}), tmp_path)
    assert str(caught.value) == (
        f'backend "etcd" (https://127.0.0.1:2379, key /l4plan/state/default): cannot load the TLS files '
        f"{tmp_path}/missing.pem: No such file or directory; fix ca_file, cert_file or key_file"
    )


@pytest.mark.parametrize("conn_str, environ, extra", [
    ("postgresql://u:pw@db.example.net/l4plan", {}, {"sslmode": "require"}),
    ("postgresql://u:pw@db.example.net/l4plan?sslmode=disable", {}, {}),
    ("postgresql://u:pw@db.example.net/l4plan", {"PGSSLMODE": "verify-full"}, {}),
    ("postgresql://u:pw@127.0.0.1:5432/l4plan", {}, {}),
    ("host=/run/postgresql dbname=l4plan", {}, {}),
    ("", {"PGHOST": "db.example.net"}, {"sslmode": "require"}),
])
def test_pg_off_this_machine_requires_tls_unless_a_mode_is_chosen(conn_str, environ, extra):
    assert encrypted_off_loopback(conn_str, environ) == extra


def test_an_etcd_password_is_never_sent_in_cleartext_off_this_machine(tmp_path):
    settings = {"endpoints": ["http://10.0.0.5:2379"], "username": "root", "password": "pw"}
    with pytest.raises(StateError) as caught:
        open_backend(Settings("etcd", settings), tmp_path)
    assert "the password would cross the network in cleartext to http://10.0.0.5:2379; use https:// endpoints" in str(caught.value)
    assert "pw" not in str(caught.value).replace("password", "")
