"""What `l4plan runtime serve` is started with, and the admin endpoint's grammar.

Plain Python, no Twisted: the CLI reads its defaults and checks ``--admin``
here without loading the reactor.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """What `l4plan runtime serve` was started with."""

    data_dir: str = ".l4plan"  # the provider always passes its own
    bind: str = "127.0.0.1"
    bind6: str = "::1"
    drain_timeout: float = 30.0
    connect_timeout: float = 5.0
    idle_timeout: float = 600.0
    udp_idle_timeout: float = 30.0
    max_connections: int = 10000
    max_sessions: int = 10000
    max_per_source: int = 0  # connections and sessions one client address may hold; 0: no cap
    log_file: str | None = None  # rotated by size; None: standard error
    pid_file: str | None = None  # holds the pid of the process serving; a restart rewrites it
    dns_ttl: float = 30.0
    workers: int = 1
    splice: bool = True  # relay TCP bytes in the kernel where the platform can
    etcd: tuple = ()  # endpoints of the fleet's etcd; empty: not in a fleet
    etcd_prefix: str = "/l4plan/fleet/"
    node: str | None = None  # this node's name in the fleet
    node_ttl: float = 10.0  # seconds a dead node's report stays in etcd
    etcd_ca_file: str | None = None  # TLS to the fleet's etcd: its CA, this node's certificate and key
    etcd_cert_file: str | None = None
    etcd_key_file: str | None = None
    token_file: str | None = None  # the admin token, read again on SIGHUP
    tls_cert: str | None = None  # the admin API's TLS certificate and key, read again on SIGHUP
    tls_key: str | None = None
    tls_client_ca: str | None = None  # with it, admin clients need a certificate it signed

    @property
    def reuse_port(self):
        """Every process of `serve --workers N` opens the edge ports with SO_REUSEPORT."""
        return self.workers > 1


def parse_endpoint(text):
    """``unix:PATH`` or ``tcp:HOST:PORT`` -> ("unix", path) / ("tcp", host, port)."""
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest:
        return ("unix", rest)
    host, _, port = rest.rpartition(":")
    if kind == "tcp" and host and port.isdigit() and 0 < int(port) < 65536:
        return ("tcp", host.strip("[]"), int(port))
    raise ValueError(f"{text!r} is not unix:PATH or tcp:HOST:PORT")
