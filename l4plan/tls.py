"""TLS on the engine side: client contexts for the runtime's admin API and for
etcd, and which hosts are this machine, where no secret needs TLS."""

import ipaddress
import ssl


def client_context(ca_file=None, cert_file=None, key_file=None):
    """A client TLS context: the server checked against ``ca_file`` (else the
    system's CAs), and our certificate for mutual TLS. ValueError names a bad file."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as error:
        files = ", ".join(str(f) for f in (ca_file, cert_file, key_file) if f)
        raise ValueError(f"cannot load the TLS files {files}: {getattr(error, 'strerror', None) or error}") from None
    return context


def is_loopback(host):
    """Whether ``host`` (a name or an address) is this machine: a secret sent
    there in cleartext does not cross a network."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
