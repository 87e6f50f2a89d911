"""A small client of etcd's v3 JSON gateway (``/v3/…``) for the engine side.

The gateway speaks JSON over HTTP: keys and values are base64, int64 fields
are strings, and zero values are left out (an absent ``mod_revision`` is 0).
Each call tries the endpoints in turn, so one member down is not an error;
with a user name the auth token is fetched on first use and again when etcd
says it expired. The standard library's HTTP client is enough for this.
"""

import base64
import gzip
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from l4plan.tls import client_context, is_loopback

TIMEOUT_SECONDS = 5
GZIP_MAGIC = b"\x1f\x8b"
#: Re-authenticate before etcd's default token TTL (300 s) runs out.
TOKEN_SECONDS = 240


class EtcdError(Exception):
    """etcd refused a request or could not be reached; the message says which."""


def b64(text):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text or "")


def pack(data):
    """A large value as stored: gzipped, since etcd refuses a request over 1.5 MiB."""
    return gzip.compress(data, 6)


def unpack(value):
    """The bytes of a stored value, gzipped or (put by hand with etcdctl) not;
    OSError or EOFError when its gzip data is broken."""
    return gzip.decompress(value) if value.startswith(GZIP_MAGIC) else value


class Client:
    """Calls to one etcd cluster."""

    def __init__(self, endpoints, username=None, password=None, ca_file=None,
                 cert_file=None, key_file=None, timeout=TIMEOUT_SECONDS):
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.username, self._password = username, password
        cleartext = [
            e for e in self.endpoints
            if e.startswith("http://") and not is_loopback(urllib.parse.urlsplit(e).hostname or "")
        ]
        if password and cleartext:
            raise EtcdError(
                f"the password would cross the network in cleartext to {', '.join(cleartext)}; "
                "use https:// endpoints (with ca_file)"
            )
        self.timeout = timeout
        self._token, self._token_time = None, 0.0
        self._context = None
        if any(e.startswith("https://") for e in self.endpoints):
            try:
                self._context = client_context(ca_file, cert_file, key_file)
            except ValueError as error:
                raise EtcdError(f"{error}; fix ca_file, cert_file or key_file") from None

    def call(self, path, body):
        """The JSON answer of ``POST /v3/PATH`` on the first endpoint that answers."""
        if self.username and (self._token is None or time.monotonic() - self._token_time > TOKEN_SECONDS):
            self._authenticate()
        try:
            return self._post(path, body, self._token)
        except EtcdError as error:
            if self.username and "invalid auth token" in str(error):
                self._authenticate()
                return self._post(path, body, self._token)
            raise

    def _authenticate(self):
        answer = self._post("auth/authenticate", {"name": self.username, "password": self._password}, None)
        self._token, self._token_time = answer.get("token"), time.monotonic()

    def _post(self, path, body, token):
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        unreachable = []
        for endpoint in self.endpoints:
            request = urllib.request.Request(f"{endpoint}/v3/{path}", data, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as answer:
                    return json.loads(answer.read() or b"{}")
            except urllib.error.HTTPError as error:
                raise EtcdError(f"{endpoint}: {_reason(error)}") from None
            except (OSError, ValueError) as error:
                unreachable.append(f"{endpoint}: {_why(error)}")
        raise EtcdError("no endpoint answered (" + "; ".join(unreachable) + ")")

    # --- the calls the backends use -----------------------------------------

    def get(self, key):
        """The key-value of ``key`` (value decoded, revisions as ints), or None."""
        kvs = self.call("kv/range", {"key": b64(key)}).get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix):
        """The key-values of every key under ``prefix``, as ``get`` gives them."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        answer = self.call("kv/range", {"key": b64(prefix), "range_end": b64(end)})
        return [_kv(kv) for kv in answer.get("kvs") or []]

    def txn(self, compare, success, failure=()):
        """``(succeeded, answer)`` of one transaction."""
        answer = self.call("kv/txn", {"compare": compare, "success": list(success), "failure": list(failure)})
        return bool(answer.get("succeeded")), answer

    def grant(self, ttl_seconds):
        """A new lease's ID."""
        return self.call("lease/grant", {"TTL": max(1, round(ttl_seconds))})["ID"]

    def keep_alive(self, lease):
        """Renew ``lease``; False when it has already expired."""
        result = self.call("lease/keepalive", {"ID": lease}).get("result") or {}
        return int(result.get("TTL", 0)) > 0

    def revoke(self, lease):
        try:
            self.call("lease/revoke", {"ID": lease})
        except EtcdError as error:
            if "lease not found" not in str(error):
                raise


def client_of(settings, workdir):
    """The Client of a backend or provider block (endpoints, username,
    password, ca_file, cert_file, key_file; files relative to ``workdir``)."""
    files = (os.path.join(workdir, settings[k]) if settings.get(k) else None for k in ("ca_file", "cert_file", "key_file"))
    return Client(settings["endpoints"], settings.get("username"), settings.get("password"), *files)


def _kv(kv):
    return {
        "key": unb64(kv.get("key")).decode("utf-8"),
        "value": unb64(kv.get("value")),
        "mod_revision": int(kv.get("mod_revision", 0)),
        "create_revision": int(kv.get("create_revision", 0)),
        "lease": kv.get("lease", "0"),
    }


def put(key, value, lease=None):
    """A txn operation putting ``value`` at ``key``."""
    request = {"key": b64(key), "value": b64(value)}
    if lease:
        request["lease"] = lease
    return {"requestPut": request}


def delete(key):
    """A txn operation deleting ``key``."""
    return {"requestDeleteRange": {"key": b64(key)}}


def revision_is(key, target, revision):
    """A txn comparison: ``key``'s ``target`` (MOD or CREATE) revision equals ``revision``."""
    field = "mod_revision" if target == "MOD" else "create_revision"
    return {"key": b64(key), "target": target, "result": "EQUAL", field: str(revision)}


def _why(error):
    """What stopped a request, in a line; a TLS problem says which setting fixes it."""
    reason = error if isinstance(error, ssl.SSLError) else getattr(error, "reason", None) or error
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({reason.verify_message}); set ca_file to the CA that signed it"
    if isinstance(reason, ssl.SSLError):
        return (f"the TLS handshake failed ({reason.reason or reason}); with client-cert-auth set "
                "cert_file and key_file to a certificate its CA signed")
    return str(reason)


def _reason(error):
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        body = {}
    return body.get("message") or body.get("error") or f"HTTP {error.code}"
