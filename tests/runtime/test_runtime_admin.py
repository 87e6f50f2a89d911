"""The admin API's resources, rendered with DummyRequest (no sockets)."""

import io
import json
import socket
from pathlib import Path

import pytest
from runtime_helpers import make_document, make_rule
from test_runtime_reconcile import Reactor
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyChannel, DummyRequest

from l4plan.runtime import admin, settings
from l4plan.runtime.reconcile import LiveConfig
from l4plan.runtime.serve import Runtime
from l4plan.runtime.settings import Settings

TOKEN = "the-token"
DOCUMENT = make_document([make_rule("7000", [(7000, [17000])])])


@pytest.fixture
def live(tmp_path):
    runtime = Runtime(Reactor(taken={7009}), Settings(data_dir=str(tmp_path), splice=False))
    config = LiveConfig.restore(runtime, tmp_path)
    runtime.startService()
    yield config
    runtime.stopService()


def call(site, method, path, body=b"", headers=(), too_large=False):
    """Render ``path`` of ``site``: (status, decoded body)."""
    request = DummyRequest(path.lstrip(b"/").split(b"/"))
    request.method = method
    request.content = io.BytesIO(body)
    request.too_large = too_large
    for name, value in headers:
        request.requestHeaders.addRawHeader(name, value)
    answer = getChildForRequest(site.resource, request).render(request)
    if request.responseHeaders.getRawHeaders(b"content-type") == [b"application/json"]:
        answer = json.loads(answer)
    return request.responseCode, answer


def put(site, document, generation, **options):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = [(b"if-match", str(generation).encode())] if generation is not None else []
    return call(site, b"PUT", b"/v1/config", body, headers, **options)


@pytest.mark.parametrize(
    "authorization", [None, b"Bearer wrong", b"Basic the-token", b"Bearer the-token2"]
)
def test_token_required_over_tcp(live, authorization):
    """Without the right bearer token every path but the probes answers 401 and
    a PUT changes nothing."""
    site = admin.make_site(live, TOKEN)
    headers = [(b"authorization", authorization)] if authorization else []
    for path in (b"/v1/config", b"/v1/status", b"/metrics", b"/nothing"):
        assert call(site, b"GET", path, headers=headers)[0] == 401
    body = json.dumps(DOCUMENT).encode()
    status, answer = call(site, b"PUT", b"/v1/config", body, [*headers, (b"if-match", b"0")])
    assert (status, answer["error"]) == (
        401,
        "a valid bearer token is required (Authorization: Bearer TOKEN)",
    )
    assert live.generation == 0 and live.runtime.listeners() == {}


def test_probes_answer_without_a_token_and_say_nothing_else(live):
    site = admin.make_site(live, TOKEN, ready=lambda: False)
    assert call(site, b"GET", b"/healthz") == (200, {"status": "ok"})
    assert call(site, b"GET", b"/readyz") == (503, {"status": "not ready"})
    assert call(admin.make_site(live, TOKEN), b"GET", b"/readyz") == (200, {"status": "ready"})


def test_a_new_token_replaces_the_old(live):
    site = admin.make_site(live, TOKEN)
    site.guard.token = b"rotated"
    old = [(b"authorization", b"Bearer the-token")]
    new = [(b"authorization", b"Bearer rotated")]
    assert call(site, b"GET", b"/v1/status", headers=old)[0] == 401
    assert call(site, b"GET", b"/v1/status", headers=new)[0] == 200


def test_a_method_a_path_does_not_serve_is_a_405_naming_those_it_does(live):
    site = admin.make_site(live)
    assert call(site, b"TRACE", b"/v1/status") == (405, {"error": "TRACE is not allowed here (allowed: GET, HEAD)"})
    assert call(site, b"DELETE", b"/v1/config") == (405, {"error": "DELETE is not allowed here (allowed: GET, HEAD, PUT)"})


def test_right_token_passes(live):
    """The bearer token lets requests through to the API."""
    site = admin.make_site(live, TOKEN)
    headers = [(b"authorization", b"Bearer the-token")]
    assert call(site, b"GET", b"/healthz", headers=headers) == (200, {"status": "ok"})
    assert call(site, b"GET", b"/v1/nothing", headers=headers)[0] == 404


def test_put_answers(live):
    """428 without If-Match, 409 with a stale one, 400 malformed, 413 too large,
    422 invalid, 500 on a port that cannot be bound, 200 with the changes."""
    site = admin.make_site(live)
    assert put(site, DOCUMENT, None) == (
        428,
        {
            "error": "If-Match is required: the generation this document replaces (GET /v1/config)",
            "generation": 0,
        },
    )
    assert put(site, DOCUMENT, 3)[0] == 409
    assert put(site, b"{nope", 0)[0] == 400
    assert put(site, DOCUMENT, 0, too_large=True) == (
        413,
        {"error": "the body is over 8388608 bytes"},
    )
    status, answer = put(site, {**DOCUMENT, "format_version": 2}, 0)
    assert (status, answer["reasons"]) == (422, ["format_version: 1 was expected"])
    taken = make_document([make_rule("7009", [(7009, [17009])])])
    assert put(site, taken, 0) == (
        500,
        {
            "error": "cannot open every new listener, so nothing was changed",
            "failed": ["tcp 127.0.0.1:7009: [Errno 98] Address already in use"],
        },
    )
    assert put(site, DOCUMENT, 0) == (
        200,
        {
            "generation": 1,
            "changes": {"added": ["tcp 127.0.0.1:7000"], "removed": [], "updated": []},
        },
    )
    assert call(site, b"GET", b"/v1/config") == (200, {"generation": 1, "config": DOCUMENT})


def test_status_and_metrics(live):
    """Status lists listeners with their rule and open connections; metrics are Prometheus text."""
    site = admin.make_site(live)
    put(site, DOCUMENT, 0)
    status, answer = call(site, b"GET", b"/v1/status")
    assert answer["listeners"] == [
        {
            "name": "tcp 127.0.0.1:7000",
            "protocol": "tcp",
            "address": "127.0.0.1",
            "port": 7000,
            "rule": "app/tcp/7000",
            "active": 0,
        }
    ]
    assert answer["rules"]["app/tcp/7000"]["opened"] == 0
    text = call(site, b"GET", b"/metrics")[1].decode()
    assert "# TYPE l4plan_rule_opened_total counter\n" in text
    assert (
        'l4plan_rule_active{rule="app/tcp/7000",application="app",protocol="tcp",edge_port="7000"} 0\n'
        in text
    )
    assert "l4plan_config_generation 1\n" in text


def test_body_past_the_limit_is_not_buffered():
    """A declared length over max_body drops the body at once; an undeclared one
    (chunked) keeps bytes up to the limit and drops the rest as it arrives."""
    declared = admin.LimitedRequest(DummyChannel())
    declared.max_body = 8
    declared.gotLength(10)
    declared.handleContentChunk(b"12345")
    assert (declared.too_large, declared.content.getvalue()) == (True, b"")
    chunked = admin.LimitedRequest(DummyChannel())
    chunked.max_body = 8
    chunked.gotLength(None)
    chunked.handleContentChunk(b"12345")
    assert not chunked.too_large
    chunked.handleContentChunk(b"67890")
    chunked.content.seek(0)
    assert (chunked.too_large, chunked.content.read()) == (True, b"12345")
    chunked.content.close()  # a temporary file, for a body of unknown length


def test_a_body_without_the_token_is_never_stored(live):
    """The token is checked from the headers: an unauthenticated PUT's body is
    dropped as it arrives, not spooled to memory or a temporary file."""
    channel = DummyChannel()
    channel.site = admin.make_site(live, TOKEN)
    request = admin.LimitedRequest(channel)
    request.requestHeaders.addRawHeader(b"authorization", b"Bearer wrong")
    request.gotLength(5 * 1024 * 1024)
    request.handleContentChunk(b"x" * 65536)
    assert request.unauthorized and request.content.getvalue() == b""
    allowed = admin.LimitedRequest(channel)
    allowed.requestHeaders.addRawHeader(b"authorization", b"Bearer the-token")
    allowed.gotLength(5)
    allowed.handleContentChunk(b"12345")
    allowed.content.seek(0)
    assert not allowed.unauthorized and allowed.content.read() == b"12345"


@pytest.mark.parametrize(
    "text, endpoint",
    [
        ("unix:.l4plan/runtime.sock", ("unix", ".l4plan/runtime.sock")),
        ("tcp:127.0.0.1:9901", ("tcp", "127.0.0.1", 9901)),
        ("tcp:[::1]:9901", ("tcp", "::1", 9901)),
    ],
)
def test_parse_endpoint(text, endpoint):
    """unix:PATH and tcp:HOST:PORT are the admin endpoints."""
    assert settings.parse_endpoint(text) == endpoint


@pytest.mark.parametrize("text", ["unix:", "tcp:9901", "tcp:localhost:0", "http://127.0.0.1:1"])
def test_parse_endpoint_refuses(text):
    with pytest.raises(ValueError, match="is not unix:PATH or tcp:HOST:PORT"):
        settings.parse_endpoint(text)


def test_no_change_while_stopping(live):
    """Once the runtime is stopping (draining), a PUT is refused with 503."""
    site = admin.make_site(live)
    live.runtime.stopService()
    assert put(site, DOCUMENT, 0) == (503, {"error": "the runtime is stopping"})
    assert live.generation == 0


def test_stale_socket_removed_live_one_and_other_files_kept(tmp_path, monkeypatch):
    """A socket nobody accepts on is removed before binding; a listening socket
    and a file that is no socket are left alone."""
    monkeypatch.chdir(tmp_path)  # short relative paths: AF_UNIX paths are limited
    stale, live, other = Path("stale.sock"), Path("live.sock"), Path("other")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))
    other.write_text("not a socket")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(live))
        listening.listen()
        for path in (stale, live, other):
            admin._remove_stale_socket(path)
        assert (stale.exists(), live.exists(), other.exists()) == (False, True, True)


def test_a_fleet_node_refuses_a_put(live):
    """A node of a fleet serves the fleet's document: a PUT is a 409 that says where to change it."""
    site = admin.make_site(live, fleet="/l4plan/fleet/prod/")
    status, answer = put(site, DOCUMENT, 0)
    assert status == 409
    assert answer["error"] == (
        "this runtime follows the fleet under /l4plan/fleet/prod/ in etcd; change it with the fleet provider"
    )
    assert live.generation == 0
