"""A small blocking client of the runtime's admin API (HTTP over a unix socket or TCP).

The engine side needs a handful of JSON requests, so this is ``http.client``
with a unix-socket connection, not a reactor.
"""

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class AdminError(Exception):
    """The admin API could not be reached or answered an error."""


class Unreachable(AdminError):
    """Nothing answers on the admin address."""


class NoAnswer(AdminError):
    """The request went out whole but no answer came back: whether the runtime
    acted on it is unknown."""


@dataclass(frozen=True)
class Response:
    status: int
    body: dict
    headers: dict


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def parse_endpoint(admin):
    """``unix:PATH`` / ``http(s)://HOST:PORT`` / ``tcp:HOST:PORT`` → ("unix", path) or ("tcp", host, port)."""
    if admin.startswith("unix:"):
        return ("unix", admin[len("unix:") :])
    if admin.startswith("tcp:"):
        host, _, port = admin[len("tcp:") :].rpartition(":")
        return ("tcp", host.strip("[]"), int(port))
    url = urlsplit(admin)
    if url.scheme in ("http", "https") and url.hostname and url.port:
        return ("tcp", url.hostname, url.port)
    raise AdminError(f'admin address "{admin}" is not unix:PATH, https://HOST:PORT or http://HOST:PORT')


class AdminClient:
    """JSON requests to one runtime; ``token`` is sent as a bearer token over
    TCP; ``tls`` (an ssl.SSLContext) is used for an ``https://`` address."""

    def __init__(self, admin, token=None, timeout=30.0, tls=None):
        self.admin = admin
        self.endpoint = parse_endpoint(admin)
        self.token = token
        self.timeout = timeout
        self.tls = tls if admin.startswith("https://") else None
        if admin.startswith("https://") and self.tls is None:
            self.tls = ssl.create_default_context()

    def _connection(self):
        if self.endpoint[0] == "unix":
            return _UnixConnection(self.endpoint[1], self.timeout)
        if self.tls is not None:
            return http.client.HTTPSConnection(self.endpoint[1], self.endpoint[2], timeout=self.timeout, context=self.tls)
        return http.client.HTTPConnection(self.endpoint[1], self.endpoint[2], timeout=self.timeout)

    def request(self, method, path, body=None, headers=None):
        """Send one request; the JSON body of the answer (or ``{"text": …}``)."""
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        connection = self._connection()
        try:
            try:
                connection.request(method, path, body=data, headers=headers)
            except (FileNotFoundError, ConnectionRefusedError) as error:
                raise Unreachable(f"no runtime answers on {self.admin} ({error.strerror or error})") from None
            except ssl.SSLCertVerificationError as error:
                raise AdminError(
                    f"the runtime on {self.admin} presented a TLS certificate that is not trusted "
                    f"({error.verify_message}); set ca_file to the CA that signed it"
                ) from None
            except ssl.SSLError as error:
                raise AdminError(
                    f"the TLS handshake with the runtime on {self.admin} failed ({error.reason}); "
                    "with mutual TLS set cert_file and key_file to a client certificate its CA signed"
                ) from None
            except OSError as error:
                raise AdminError(f"talking to the runtime on {self.admin} failed: {error}") from None
            try:
                answer = connection.getresponse()
                raw = answer.read()
            except ssl.SSLError as error:
                raise AdminError(
                    f"the runtime on {self.admin} ended the TLS session ({error.reason}); "
                    "with mutual TLS set cert_file and key_file to a client certificate its CA signed"
                ) from None
            except (OSError, http.client.HTTPException) as error:
                raise NoAnswer(f"the runtime on {self.admin} took the request but gave no answer ({error or type(error).__name__})") from None
        finally:
            connection.close()
        return Response(answer.status, _decode(raw), dict(answer.getheaders()))

    def healthy(self):
        try:
            return self.request("GET", "/healthz").status == 200
        except AdminError:
            return False


def _decode(raw):
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {"text": raw.decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"value": value}
