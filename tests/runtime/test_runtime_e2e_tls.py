"""The admin API over TLS and mutual TLS, with certificates made by trustme:
the real CLI, a real runtime process, real sockets."""

import datetime
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme
import yaml
from runtime_helpers import L4PLAN, connect, free_ports

pytestmark = pytest.mark.processes

SITE = 'site "example.com" {\n  plan = "enterprise"\n}\n'
TOKEN = "first-token-0123456789"


def app(edge, origin):
    return (
        f'application "game" {{\n  domain = "game.example.com"\n  rule {{\n'
        f'    protocol = "tcp"\n    edge_port = "{edge}"\n    origin = "127.0.0.1"\n'
        f'    origin_port = "{origin}"\n  }}\n}}\n'
    )


class Pki:
    """A server CA, a client CA, another CA, and their files in ``directory``."""

    def __init__(self, directory):
        self.directory = directory
        self.ca, self.client_ca, self.other = trustme.CA(), trustme.CA(), trustme.CA()
        self.ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        self.client_ca.cert_pem.write_to_path(str(directory / "client-ca.pem"))
        self.other.cert_pem.write_to_path(str(directory / "other-ca.pem"))
        self.server = self.leaf(self.ca, "server", "127.0.0.1")
        self.client = self.leaf(self.client_ca, "client", "l4plan-ci")
        self.stranger = self.leaf(self.other, "stranger", "l4plan-ci")

    def leaf(self, ca, name, identity, **dates):
        cert = ca.issue_cert(identity, **dates)
        cert.cert_chain_pems[0].write_to_path(str(self.directory / f"{name}.pem"))
        cert.private_key_pem.write_to_path(str(self.directory / f"{name}.key"))
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def tls_runtime(processes, tmp_path, pki):
    """Start a runtime with its admin API on TLS; returns (process, port)."""

    def start(*extra, cert=None):
        port = free_ports(1)[0]
        (tmp_path / "admin.token").write_text(TOKEN + "\n")
        data = tmp_path / f"data-{port}"
        data.mkdir()
        cert_file, key_file = cert or pki.server
        process = processes.start(
            [L4PLAN, "runtime", "serve", "--data-dir", data, "--admin", f"tcp:127.0.0.1:{port}",
             "--token-file", tmp_path / "admin.token", "--tls-cert", cert_file, "--tls-key", key_file, *extra],
            "runtime",
        )
        return process, port

    return start


def configure(directory, port, edge, origin, **tls):
    lines = [f'  admin = "https://127.0.0.1:{port}"'] + [f'  {k} = "{v}"' for k, v in tls.items()]
    (directory / "main.l4.hcl").write_text(SITE + 'provider "runtime" {\n' + "\n".join(lines) + "\n}\n" + app(edge, origin))


@pytest.fixture
def project(tmp_path, monkeypatch):
    directory = tmp_path / "config"
    directory.mkdir()
    monkeypatch.setenv("L4PLAN_RUNTIME_TOKEN", TOKEN)
    return directory


def get(port, path, token=None, context=None, cert=None):
    context = context or ssl.create_default_context(cafile=None)
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def trusting(pki, cert=None):
    context = ssl.create_default_context(cafile=str(pki.directory / "ca.pem"))
    if cert:
        context.load_cert_chain(*map(str, cert))
    return context


def test_apply_over_https_with_the_right_ca_and_a_wrong_one(tls_runtime, project, cli, pki, start_origin):
    _, port = tls_runtime()
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    configure(project, port, edge, origin, ca_file=pki.directory / "other-ca.pem")
    refused = cli("-C", project, "apply", "--auto-approve")
    assert refused.exit_code == 1
    assert f"the runtime on https://127.0.0.1:{port} presented a TLS certificate that is not trusted" in refused.stderr
    assert "set ca_file to the CA that signed it" in refused.stderr and "Traceback" not in refused.output
    configure(project, port, edge, origin, ca_file=pki.directory / "ca.pem")
    applied = cli("-C", project, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    with connect("127.0.0.1", edge) as stream:
        stream.sendall(b"hi\n")
        assert stream.recv(3) == b"hi\n"


def test_an_expired_server_certificate_is_refused_clearly(tls_runtime, project, cli, pki):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    expired = pki.leaf(pki.ca, "expired", "127.0.0.1", not_before=past - datetime.timedelta(days=30), not_after=past)
    _, port = tls_runtime(cert=expired)
    configure(project, port, *free_ports(2), ca_file=pki.directory / "ca.pem")
    result = cli("-C", project, "plan")
    assert result.exit_code == 1
    assert "not trusted (certificate has expired)" in result.stderr


def test_plaintext_on_the_tls_port_is_refused_and_the_runtime_serves_on(tls_runtime, pki):
    process, port = tls_runtime()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.request("GET", "/healthz")
        connection.getresponse()
    connection.close()
    assert process.poll() is None
    assert get(port, "/healthz", context=trusting(pki)) == (200, {"status": "ok"})


def test_probes_need_no_token_the_rest_does(tls_runtime, pki):
    _, port = tls_runtime()
    context = trusting(pki)
    assert get(port, "/healthz", context=context) == (200, {"status": "ok"})
    assert get(port, "/readyz", context=context) == (200, {"status": "ready"})
    assert get(port, "/v1/config", context=context)[0] == 401
    assert get(port, "/v1/config", TOKEN, context=context)[0] == 200


def test_mutual_tls_refuses_no_certificate_and_a_stranger(tls_runtime, project, cli, pki):
    _, port = tls_runtime("--tls-client-ca", pki.directory / "client-ca.pem")
    for cert in (None, pki.stranger):
        with pytest.raises((ssl.SSLError, OSError)):
            get(port, "/healthz", context=trusting(pki, cert))
    assert get(port, "/healthz", context=trusting(pki, pki.client)) == (200, {"status": "ok"})
    edge, origin = free_ports(2)
    configure(project, port, edge, origin, ca_file=pki.directory / "ca.pem")
    refused = cli("-C", project, "plan")
    assert refused.exit_code == 1 and "mutual TLS set cert_file and key_file" in refused.stderr
    configure(project, port, edge, origin, ca_file=pki.directory / "ca.pem",
              cert_file=pki.client[0], key_file=pki.client[1])
    assert cli("-C", project, "plan").exit_code == 0


def test_a_restart_over_mutual_tls_hands_the_tls_admin_socket_over(tls_runtime, project, cli, pki, start_origin):
    """`runtime restart` from a configuration whose provider speaks mutual TLS:
    the new process serves the same TCP admin socket with TLS, and the stream
    opened before goes on with the old one."""
    process, port = tls_runtime("--tls-client-ca", pki.directory / "client-ca.pem")
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    configure(project, port, edge, origin, ca_file=pki.directory / "ca.pem",
              cert_file=pki.client[0], key_file=pki.client[1])
    assert cli("-C", project, "apply", "--auto-approve").exit_code == 0
    context = trusting(pki, pki.client)
    with connect("127.0.0.1", edge) as stream:
        restarted = cli("-C", project, "runtime", "restart")
        assert restarted.exit_code == 0, restarted.output
        new = int(restarted.stdout.split("pid ")[1].split()[0])
        try:
            status, body = get(port, "/v1/status", TOKEN, context=context)
            assert status == 200 and body["pid"] == new != process.pid
            assert f"pid {body['pid']} serves now; pid {process.pid} finishes" in restarted.stdout
            stream.sendall(b"still\n")
            assert stream.recv(6) == b"still\n"
            with connect("127.0.0.1", edge) as fresh:
                fresh.sendall(b"new\n")
                assert fresh.recv(4) == b"new\n"
        finally:
            os.kill(new, signal.SIGKILL)  # no child of the test: ended by its pid


def test_sighup_rotates_the_token_and_leaves_streams_alone(tls_runtime, project, cli, pki, start_origin, tmp_path):
    process, port = tls_runtime()
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    configure(project, port, edge, origin, ca_file=pki.directory / "ca.pem")
    assert cli("-C", project, "apply", "--auto-approve").exit_code == 0
    context = trusting(pki)
    with connect("127.0.0.1", edge) as stream:
        stream.sendall(b"before\n")
        assert stream.recv(7) == b"before\n"
        (tmp_path / "admin.token").write_text("second-token-9876543210\n")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while get(port, "/v1/status", TOKEN, context=context)[0] != 401:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert get(port, "/v1/status", "second-token-9876543210", context=context)[0] == 200
        stream.sendall(b"after\n")
        assert stream.recv(6) == b"after\n"


def test_a_plain_tcp_admin_off_loopback_needs_tls_or_insecure_admin(cli, tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    result = cli("runtime", "serve", "--data-dir", tmp_path, "--admin", "tcp:0.0.0.0:1", "--token-file", tmp_path / "token")
    assert result.exit_code != 0
    assert "is not loopback: give --tls-cert and --tls-key" in result.stderr




def test_a_wrong_token_says_where_it_came_from(tls_runtime, project, cli, pki, monkeypatch):
    _, port = tls_runtime()
    configure(project, port, *free_ports(2), ca_file=pki.directory / "ca.pem")
    monkeypatch.setenv("L4PLAN_RUNTIME_TOKEN", "not-the-token")
    result = cli("-C", project, "plan")
    assert result.exit_code == 1
    assert f"the runtime on https://127.0.0.1:{port} refused the admin token from $L4PLAN_RUNTIME_TOKEN" in result.stderr
    assert "not-the-token" not in result.output


HOSTED = Path(__file__).parents[2] / "examples" / "ci" / "hosted"


def run_job(job, env, given):
    """Run the ``run`` steps of a workflow job with bash, as a hosted runner
    would (the ``pip install`` lines aside: l4plan is installed here)."""
    def expand(value):
        return re.sub(r"\$\{\{\s*(?:secrets|vars)\.(\w+)\s*\}\}", lambda m: given[m[1]], str(value))

    job_env = {**env, **{k: expand(v) for k, v in job.get("env", {}).items()}}
    for step in job["steps"]:
        script = "\n".join(line for line in step.get("run", "").splitlines() if not line.startswith("pip install"))
        if not script.strip():
            continue
        step_env = {**job_env, **{k: expand(v) for k, v in step.get("env", {}).items()}}
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=step_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (step.get("name"), done.stdout, done.stderr)


def test_the_hosted_ci_workflow_runs_its_shell_steps(tls_runtime, pki, postgres, tmp_path, start_origin):
    """examples/ci/hosted: check, plan and apply, step by step, against a real
    PostgreSQL and a runtime over TLS, every secret an environment variable."""
    _, port = tls_runtime()
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    infra = tmp_path / "infra"
    shutil.copytree(HOSTED / "infra", infra)
    main = infra / "main.l4.hcl"
    main.write_text(main.read_text().replace('"17000"', f'"{origin}"').replace('"7000"', f'"{edge}"'))
    temp = tmp_path / "runner"
    temp.mkdir()
    given = {
        "L4PLAN_PG_CONN_STR": postgres.url,
        "L4PLAN_RUNTIME_TOKEN": TOKEN,
        "L4PLAN_RUNTIME_CA": (pki.directory / "ca.pem").read_text(),
        "L4PLAN_RUNTIME_ADMIN": f"https://127.0.0.1:{port}",
    }
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "L4PLAN_DIR": str(infra), "NO_COLOR": "1",
        "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(temp / "output"), "GITHUB_STEP_SUMMARY": str(temp / "summary"),
    }
    jobs = yaml.safe_load((HOSTED / "l4plan.yml").read_text())["jobs"]
    for name in ("check", "plan", "apply"):
        run_job(jobs[name], env, given)
    assert "changes=true" in (temp / "output").read_text()
    assert "<!-- l4plan-plan -->" in (temp / "summary").read_text()
    with connect("127.0.0.1", edge) as stream:
        stream.sendall(b"from ci\n")
        assert stream.recv(8) == b"from ci\n"
    (temp / "output").write_text("")
    run_job(jobs["plan"], env, given)
    assert (temp / "output").read_text() == "changes=false\n"
    assert postgres.url.split("@")[0].split(":")[-1] not in (temp / "summary").read_text()
