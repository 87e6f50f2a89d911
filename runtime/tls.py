# -*- test-case-name: tests.runtime.test_runtime_e2e_tls -*-
"""TLS, with Twisted's TLS (pyOpenSSL) reached only from here.

The admin API's server side: a certificate and key, and optionally a client
CA. The context is built from the files at start and again on SIGHUP;
connections already open keep the context they were made with. With a client
CA, a client without a certificate signed by it is refused in the handshake
(mutual TLS). The fleet's etcd client side: the CA to check etcd's
certificate against and this node's certificate, for twisted.web's Agent.
"""

from pathlib import Path

from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.logger import Logger
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

log = Logger()


class TlsError(Exception):
    """A certificate, key or CA file cannot be used; the message names it."""


class ReloadableTls:
    """An old-style context factory whose context can be built again."""

    def __init__(self, cert_file, key_file, client_ca=None):
        self.files = (cert_file, key_file, client_ca)
        self._options = _options(*self.files)

    def getContext(self):
        return self._options.getContext()

    def reload(self):
        """Build the context again from the files; on an error keep the old one and raise."""
        self._options = _options(*self.files)


def _read(path, what):
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise TlsError(f"cannot read the {what} {path}: {error.strerror}") from None


def _private_certificate(cert_file, key_file, what):
    """The certificate in ``cert_file`` with the key in ``key_file``."""
    pem = _read(cert_file, f"{what} certificate") + b"\n" + _read(key_file, f"{what} key")
    try:
        return PrivateCertificate.loadPEM(pem)
    except Exception as error:  # pyOpenSSL raises its own Error types, or ValueError
        raise TlsError(f"{cert_file} and {key_file} are not a PEM certificate and its key: {error}") from None


def _options(cert_file, key_file, client_ca):
    certificate = _private_certificate(cert_file, key_file, "TLS")
    if client_ca is None:
        return certificate.options()
    try:
        authority = Certificate.loadPEM(_read(client_ca, "client CA"))
    except TlsError:
        raise
    except Exception as error:
        raise TlsError(f"{client_ca} is not a PEM CA certificate: {error}") from None
    return certificate.options(authority)


@implementer(IPolicyForHTTPS)
class ClientPolicy:
    """How the fleet's etcd client checks etcd (``ca_file``, else the system's
    CAs) and shows itself (``cert_file`` and ``key_file``, for mutual TLS)."""

    def __init__(self, ca_file=None, cert_file=None, key_file=None):
        self._ca = Certificate.loadPEM(_read(ca_file, "etcd CA")) if ca_file else None
        self._client = _private_certificate(cert_file, key_file, "etcd client") if cert_file else None
        self._default = BrowserLikePolicyForHTTPS()

    def creatorForNetloc(self, hostname, port):
        if self._ca is None and self._client is None:
            return self._default.creatorForNetloc(hostname, port)
        return optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._ca, clientCertificate=self._client)
