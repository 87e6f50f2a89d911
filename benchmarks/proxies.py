"""The proxies under test, each single-threaded on the proxy core, and "direct".

Every proxy forwards the same routes to the same origins; a proxy that cannot
forward a route (HAProxy and UDP, nginx stream and PROXY v2, Twisted's
portforward and anything but plain TCP) leaves it out and the tests that need
it skip that proxy.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.processes import (
    PROXY_CORE,
    Process,
    free_port,
    runtime_serve,
    wait_for_child,
    wait_for_line,
    wait_for_port,
)
from l4plan.runtime import document as runtime_document

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


@dataclass(frozen=True)
class Route:
    """One origin service; ``protocols`` share the edge port (iperf3 needs both)."""

    name: str
    origin: int
    protocols: tuple = ("tcp",)
    proxy_v2: bool = False  # the origin expects a PROXY v2 header


def routes(origins):
    """The routes every proxy is asked to forward, to ``OriginPorts`` ``origins``."""
    return (
        Route("iperf", origins.iperf, ("tcp", "udp")),
        Route("http", origins.http),
        Route("http_proxy_v2", origins.http_proxy_v2, proxy_v2=True),
        Route("udp_echo", origins.udp_echo, ("udp",)),
    )


class Proxy:
    """Start with ``start(routes, workdir)``; ``edges[(route, protocol)]`` is the port to use.

    Subclasses set ``name``, ``protocols``, ``proxy_v2`` and implement ``_launch``,
    which starts the processes and returns {route name: pid doing its relaying}.
    """

    protocols = ("tcp",)
    proxy_v2 = False

    def __init__(self):
        self.processes = []
        self.edges = {}
        self._pids = {}

    def supports(self, route):
        return bool(self._protocols(route)) and (self.proxy_v2 or not route.proxy_v2)

    def _protocols(self, route):
        return [p for p in route.protocols if p in self.protocols]

    def start(self, routes, workdir):
        served = [r for r in routes if self.supports(r)]
        for route in served:
            port = free_port()
            for protocol in self._protocols(route):
                self.edges[(route.name, protocol)] = port
        workdir = Path(workdir) / self.name
        workdir.mkdir()
        self._pids = self._launch(served, workdir)
        for (name, protocol), port in self.edges.items():
            if protocol == "tcp":
                wait_for_port(port)
        for process in self.processes:
            process.check_running()

    def pid(self, route_name):
        """The process whose CPU and memory count for ``route_name``."""
        return self._pids[route_name]

    def _run(self, argv, workdir, name="proxy"):
        process = Process(argv, PROXY_CORE, workdir / f"{name}.log", cwd=workdir)
        self.processes.append(process)
        return process

    def stop(self):
        for process in reversed(self.processes):
            process.stop()


class Direct(Proxy):
    """No proxy: the client talks to the origin; the reference for every ratio."""

    name = "direct"
    protocols = ("tcp", "udp")
    proxy_v2 = False

    def start(self, routes, workdir):
        for route in filter(self.supports, routes):
            for protocol in route.protocols:
                self.edges[(route.name, protocol)] = route.origin

    def pid(self, route_name):
        return None


HAPROXY = """\
global
    nbthread 1
    maxconn 9990
defaults
    mode tcp
    maxconn 9990
    timeout connect 5s
    timeout client 600s
    timeout server 600s
"""

HAPROXY_ROUTE = """\
listen {name}
    bind 127.0.0.1:{edge}
    server origin 127.0.0.1:{origin}{send_proxy}
"""


class HAProxy(Proxy):
    """HAProxy 2.x, ``mode tcp``, one thread, stock buffers."""

    name = "haproxy"
    proxy_v2 = True

    def _launch(self, routes, workdir):
        conf = workdir / "haproxy.cfg"
        conf.write_text(HAPROXY + "".join(self._section(r) for r in routes))
        pid = self._run(["haproxy", "-db", "-f", str(conf)], workdir).pid
        return {route.name: pid for route in routes}

    def _section(self, route):
        send_proxy = " send-proxy-v2" if route.proxy_v2 else ""
        edge = self.edges[(route.name, "tcp")]
        return HAPROXY_ROUTE.format(
            name=route.name, edge=edge, origin=route.origin, send_proxy=send_proxy
        )


NGINX = """\
load_module {module};
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 19990; }}
stream {{
{servers}}}
"""

NGINX_SERVER = """\
    server {{
        listen 127.0.0.1:{edge}{options};
        proxy_pass 127.0.0.1:{origin};
        proxy_timeout {timeout};
    }}
"""


class Nginx(Proxy):
    """nginx ``stream``, one worker; the only other UDP proxy (it sends no PROXY v2)."""

    name = "nginx"
    protocols = ("tcp", "udp")

    def _launch(self, routes, workdir):
        conf = workdir / "nginx.conf"
        servers = "".join(self._server(r, p) for r in routes for p in self._protocols(r))
        conf.write_text(NGINX.format(module=NGINX_STREAM_MODULE, dir=workdir, servers=servers))
        argv = ["nginx", "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]
        worker = wait_for_child(self._run(argv, workdir))
        return {route.name: worker for route in routes}

    def _server(self, route, protocol):
        options = " udp" if protocol == "udp" else " backlog=4096"
        timeout = "30s" if protocol == "udp" else "600s"
        edge = self.edges[(route.name, protocol)]
        return NGINX_SERVER.format(edge=edge, options=options, origin=route.origin, timeout=timeout)


class L4planRuntime(Proxy):
    """``l4plan runtime serve`` with a runtime document holding one rule per route."""

    name = "l4plan"
    protocols = ("tcp", "udp")
    proxy_v2 = True
    profile = None  # a path: run under cProfile and write the profile there
    options = ()  # more `runtime serve` options

    def _launch(self, routes, workdir):
        data_dir = workdir / "data"
        data_dir.mkdir()
        (data_dir / "applied.json").write_text(json.dumps(self.document(routes)))
        argv = runtime_serve(data_dir, self.profile)
        argv += ["--bind", "127.0.0.1", "--max-connections", "20000", "--drain-timeout", "0"]
        argv += self.options
        process = self._run(argv, workdir)
        wait_for_line(workdir / "proxy.log", "ready", process)
        return {route.name: process.pid for route in routes}

    def document(self, routes):
        """The runtime document (schemas/runtime.schema.json) forwarding ``routes``."""
        rules = [self._rule(r, p) for r in routes for p in self._protocols(r)]
        application = {
            "domain": "bench.example.com",
            "ipv6": False,
            "waf_ip_access_control": False,
            "keepalive_protection": False,
            "rules": rules,
        }
        return {**runtime_document.empty(), "applications": {"bench": application}}

    def _rule(self, route, protocol):
        edge = self.edges[(route.name, protocol)]
        return {
            "protocol": protocol,
            "edge_port": str(edge),
            "origin_type": "ip",
            "origin": "127.0.0.1",
            "origin_port": str(route.origin),
            "client_ip_passthrough": "proxy_protocol_v2" if route.proxy_v2 else "off",
            "comment": route.name,
            "ports": [{"edge": edge, "origin": [route.origin]}],
        }


class L4planPythonRelay(L4planRuntime):
    """The runtime with ``--no-splice``: TCP bytes through Python, as before splice
    (and as on platforms without it), for before/after figures in one run."""

    name = "l4plan-nosplice"
    protocols = ("tcp",)
    options = ("--no-splice",)


class Portforward(Proxy):
    """Twisted's stock ``portforward``, one process per route: the floor to stay above."""

    name = "portforward"

    def _launch(self, routes, workdir):
        return {route.name: self._forward(route, workdir) for route in routes}

    def _forward(self, route, workdir):
        edge = self.edges[(route.name, "tcp")]
        # At the default level it logs two lines per connection; that is not relaying.
        argv = [sys.executable, "-m", "twisted", "--log-file", "-", "--log-level", "warn"]
        argv += ["portforward"]
        argv += ["-p", f"tcp:{edge}:interface=127.0.0.1", "-h", "127.0.0.1"]
        argv += ["-d", str(route.origin)]
        return self._run(argv, workdir, route.name).pid


PROXIES = {
    p.name: p for p in (Direct, HAProxy, Nginx, L4planRuntime, L4planPythonRelay, Portforward)
}
