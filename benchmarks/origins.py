"""The origins every proxy forwards to, on the load core: iperf3, nginx HTTP, UDP echo.

One set of origins serves the whole run so that every proxy, and the direct
connection, talks to the same servers.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.processes import LOAD_CORE, Process, free_port, wait_for_port

HERE = Path(__file__).resolve().parent

NGINX_HTTP = """\
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_header_timeout 300s;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{plain} backlog=4096;
        listen 127.0.0.1:{proxy_v2} backlog=4096 proxy_protocol;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{alt} backlog=4096;
        location / {{ return 200 "alt\\n"; }}
    }}
}}
"""


@dataclass(frozen=True)
class OriginPorts:
    iperf: int  # iperf3 -s: TCP control and data, UDP data
    http: int  # nginx, a 3-byte response
    http_proxy_v2: int  # the same nginx, requiring a PROXY header
    udp_echo: int  # every datagram sent back
    http_alt: int  # the same nginx answering "alt": where a changed rule points


class Origins:
    """Start and stop the origin servers in ``workdir``."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.processes = []
        self.ports = None

    def start(self):
        ports = OriginPorts(*(free_port() for _ in range(5)))
        self._start(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(ports.iperf)], "iperf3")
        self._start_nginx(ports)
        echo = [sys.executable, str(HERE / "udp_echo.py"), str(ports.udp_echo)]
        self._start(echo, "udp_echo")
        for port in (ports.iperf, ports.http):
            wait_for_port(port)
        self.ports = ports
        return ports

    def _start(self, argv, name):
        log = self.workdir / f"origin-{name}.log"
        self.processes.append(Process(argv, LOAD_CORE, log))

    def _start_nginx(self, ports):
        conf_dir = self.workdir / "origin-nginx"
        conf_dir.mkdir()
        conf = conf_dir / "nginx.conf"
        conf.write_text(
            NGINX_HTTP.format(
                dir=conf_dir, plain=ports.http, proxy_v2=ports.http_proxy_v2, alt=ports.http_alt
            )
        )
        argv = ["nginx", "-p", str(conf_dir), "-c", str(conf), "-e", str(conf_dir / "error.log")]
        self._start(argv, "nginx")

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
