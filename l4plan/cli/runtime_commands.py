"""`l4plan runtime`: run the proxy runtime (the data path lives in l4plan.runtime)."""

import ipaddress
import json
import os
import signal
import socket
import time
from pathlib import Path

import click

from l4plan import model
from l4plan.cli.options import DiagnosticsError, comma_list
from l4plan.runtime.settings import Settings, parse_endpoint
from l4plan.tls import is_loopback

#: serve's defaults: the runtime's own (plain Python, no Twisted loaded).
SERVE = Settings()


def setting(flag, **options):
    """An option of serve for the Settings field of its name, with that
    field's default (``--drain-timeout`` → ``Settings.drain_timeout``)."""
    field = flag.split("/")[0].lstrip("-").replace("-", "_")
    return click.option(flag, default=getattr(SERVE, field), show_default=True, **options)


def _address(version):
    """A click callback accepting only an IP address of ``version``."""

    def check(ctx, param, value):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            address = None
        if address is None or address.version != version:
            raise click.BadParameter(f"{value!r} is not an IPv{version} address")
        return str(address)

    return check


@click.group()
def runtime():
    """Run and manage the Layer 4 proxy runtime."""


@runtime.command()
@setting(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Directory holding applied.json, the document served at start and "
    "saved by every change through the admin API.",
)
@click.option(
    "--pid-file",
    type=click.Path(dir_okay=False),
    help="Keep the pid of the process serving in this file (`runtime restart` "
    "replaces the process, and the pid in it).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    help="Write the log to this file, rotated at 10 MiB with 5 old files kept "
    "[default: standard error].",
)
@setting(
    "--bind",
    callback=_address(4),
    help="IPv4 address the edge ports listen on.",
)
@setting(
    "--bind6",
    callback=_address(6),
    help="IPv6 address for applications with ipv6 on.",
)
@setting(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    help="Seconds open TCP connections may finish after a stop, or after an "
    "apply removes their listener (UDP sessions of a removed listener end at once).",
)
@setting(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for an origin to accept a TCP connection.",
)
@setting(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a TCP connection may stay without traffic.",
)
@setting(
    "--udp-idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a UDP session may stay without traffic.",
)
@setting(
    "--max-connections",
    type=click.IntRange(min=1),
    help="Concurrent TCP connections per rule; more are refused.",
)
@setting(
    "--max-sessions",
    type=click.IntRange(min=1),
    help="Concurrent UDP sessions per rule; datagrams of more clients are dropped.",
)
@setting(
    "--max-per-source",
    type=click.IntRange(min=0),
    help="Connections and sessions one client address may hold over all rules; 0: no cap.",
)
@setting(
    "--dns-ttl",
    type=click.FloatRange(min=0),
    help="Seconds a resolved origin host name is reused.",
)
@setting(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes serving the edge ports together (SO_REUSEPORT, the kernel spreads "
    "clients over them). This one is the first and the only one with the admin API; "
    "it gives every change to all of them, all or nothing, and restarts one that dies.",
)
@setting(
    "--splice/--no-splice",
    help="Relay TCP bytes in the kernel with splice(2), zero-copy (Linux; "
    "elsewhere, and with --no-splice, they pass through Python).",
)
@click.option(
    "--etcd",
    metavar="URL[,URL...]",
    callback=comma_list,
    help="Join a fleet: serve the desired document in this etcd cluster "
    "(PREFIX desired), follow its changes, and report under PREFIX nodes/NODE. "
    "While etcd is away the last applied document is served.",
)
@setting(
    "--etcd-prefix",
    help="The fleet's key prefix in etcd (the fleet provider's prefix).",
)
@click.option("--node", help="This node's name in the fleet [default: the host name].")
@click.option("--etcd-ca-file", type=click.Path(dir_okay=False), help="With https:// etcd: the CA of etcd's certificate [default: the system's].")
@click.option("--etcd-cert-file", type=click.Path(dir_okay=False), help="With https:// etcd and client-cert-auth: this node's certificate.")
@click.option("--etcd-key-file", type=click.Path(dir_okay=False), help="The key of --etcd-cert-file.")
@setting(
    "--node-ttl",
    type=click.FloatRange(min=2),
    help="Seconds a node's report outlives the node (its etcd lease).",
)
@click.option(
    "--admin",
    metavar="EP",
    help="Serve the admin API on unix:PATH (mode 0600, no token) or tcp:HOST:PORT "
    "(every request, /healthz too, needs the --token-file token). Without it "
    "the runtime serves applied.json and cannot be reconfigured.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="File holding the bearer token the admin API requires over TCP; read again on SIGHUP.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    help="Serve the tcp: admin API over TLS with this PEM certificate (chain); read again on SIGHUP.",
)
@click.option("--tls-key", type=click.Path(dir_okay=False), help="The PEM key of --tls-cert.")
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False),
    help="Mutual TLS: refuse admin clients without a certificate signed by this CA.",
)
@click.option(
    "--insecure-admin",
    is_flag=True,
    help="Allow a plain-HTTP tcp: admin API on an address other than loopback "
    "(the token would cross the network in cleartext).",
)
def serve(admin, token_file, insecure_admin, **options):
    """Run the proxy runtime in the foreground until SIGTERM or SIGINT.

    Prints one "listening PROTOCOL ADDRESS:PORT" line per edge socket, the
    admin endpoint, then "ready" (once every worker serves). On SIGTERM/SIGINT
    it stops accepting, lets TCP connections drain for --drain-timeout seconds
    (a second signal closes them at once), stops the other workers the same
    way, prints its per-rule counters as one JSON line and exits 0.
    """
    from l4plan.runtime import systemd

    # Before Twisted loads: its endpoints module takes $LISTEN_FDS away on import.
    activated = systemd.listen_fds()
    # Twisted is imported only when a runtime runs, not for every l4plan command.
    from twisted.internet.error import CannotListenError

    from l4plan.runtime.document import DocumentError
    from l4plan.runtime.handover import successor_command
    from l4plan.runtime.serve import run
    from l4plan.runtime.tls import TlsError
    from l4plan.runtime.twisted_private import TwistedMismatch

    endpoint, token = _admin_endpoint(admin, token_file)
    if activated and (endpoint is None or len(activated) > 1):
        raise click.UsageError(
            f"systemd passed {len(activated)} sockets (LISTEN_FDS): give it one, the admin socket, "
            "and --admin naming it (unix:PATH or tcp:HOST:PORT)"
        )
    _check_tls(endpoint, options, insecure_admin)
    options["token_file"] = token_file
    if options["etcd"]:
        options["node"] = options["node"] or socket.gethostname()
    elif options["node"]:
        raise click.UsageError("--node goes with --etcd URL")
    try:
        raise SystemExit(run(Settings(**options), admin=endpoint, token=token, command=successor_command(),
                             admin_socket=next(iter(activated), None)))
    except DocumentError as error:
        raise click.ClickException(
            f"{error}\nFix the document, or remove it to start empty."
        ) from error
    except CannotListenError as error:
        raise click.ClickException(
            f"{error}\nAnother process uses this port; stop it or change the rule."
        ) from error
    except (TlsError, TwistedMismatch) as error:
        raise click.ClickException(str(error)) from None


def _check_tls(endpoint, options, insecure_admin):
    """TLS options that fit together, and no cleartext token off loopback."""
    cert, key, client_ca = options["tls_cert"], options["tls_key"], options["tls_client_ca"]
    if (cert is None) != (key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if client_ca and not cert:
        raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
    if cert and (endpoint is None or endpoint[0] != "tcp"):
        raise click.UsageError("--tls-cert is for --admin tcp:HOST:PORT")
    if endpoint is not None and endpoint[0] == "tcp" and not cert and not insecure_admin:
        if not is_loopback(endpoint[1]):
            raise click.UsageError(
                f"--admin tcp:{endpoint[1]}:{endpoint[2]} is not loopback: give --tls-cert and "
                "--tls-key so the token does not cross the network in cleartext (or --insecure-admin)"
            )


def _admin_endpoint(admin, token_file):
    """The parsed --admin endpoint and the token it needs over TCP (else None)."""

    if admin is None:
        if token_file:
            raise click.UsageError("--token-file goes with --admin tcp:HOST:PORT")
        return None, None
    try:
        endpoint = parse_endpoint(admin)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--admin") from None
    if endpoint[0] == "unix":
        return endpoint, None
    if not token_file:
        raise click.UsageError(
            "--admin tcp:HOST:PORT needs --token-file: over TCP the admin API requires a bearer token"
        )
    return endpoint, _read_token(token_file)


def _read_token(path):
    try:
        token = Path(path).read_text().strip()
    except OSError as error:
        raise click.ClickException(f"cannot read the token file {path}: {error.strerror}") from None
    if not token:
        raise click.ClickException(f"the token file {path} is empty; put a long random token in it")
    return token


# --- status and stop ---------------------------------------------------------

DATA_DIR = Path(model.DATA_DIR)


def _provider_blocks():
    """The provider blocks of the configuration here (none without one)."""
    from l4plan.config.loader import config_files, load_directory
    from l4plan.diagnostics import ConfigError

    if not config_files("."):
        return {}
    try:
        return load_directory(".").data.get("provider") or {}
    except ConfigError as error:
        raise DiagnosticsError(error.diagnostics) from None


def _admin_client(providers, timeout=10.0):
    """A client of the runtime the configuration here names (provider "runtime"),
    its token and TLS files as apply uses them. Without a configuration, the
    embedded default: unix:.l4plan/runtime.sock.
    """
    from l4plan.providers.base import ProviderError
    from l4plan.providers.runtime import RuntimeProvider

    try:
        provider = RuntimeProvider("runtime", providers.get("runtime") or {}, Path(".").resolve())
        return provider.admin_client(timeout)
    except ProviderError as error:
        raise click.ClickException(str(error)) from None


@runtime.command()
@click.option("--json", "as_json", is_flag=True, help="Print GET /v1/status as JSON.")
def status(as_json):
    """Show listeners, open connections and counters; with a fleet, one row per node.

    Asks the runtime on the admin address of the provider block here (the
    embedded default, unix:.l4plan/runtime.sock, without a configuration),
    or, with provider "fleet", the nodes' reports in etcd.
    """
    from l4plan.providers.admin_client import AdminError

    providers = _provider_blocks()
    if "fleet" in providers:
        _fleet_status(providers["fleet"], as_json)
        return
    client = _admin_client(providers)
    try:
        answer = client.request("GET", "/v1/status")
    except AdminError as error:
        raise click.ClickException(str(error)) from None
    if answer.status != 200:
        raise click.ClickException(
            f"the runtime on {client.admin} answered {answer.status}: {answer.body.get('error', answer.body)}"
        )
    if as_json:
        click.echo(json.dumps(answer.body, indent=2, sort_keys=True))
    else:
        click.echo("\n".join(status_lines(client.admin, answer.body)))


#: Seconds `runtime restart` waits for the answer: the new process has 60 to serve.
RESTART_TIMEOUT = 90.0


@runtime.command()
def restart():
    """Replace the runtime by a new process without dropping a connection.

    The runtime on the admin address of the provider block here (the
    embedded default, unix:.l4plan/runtime.sock, without a configuration)
    starts a new process from the l4plan installed now, with its own
    arguments, and hands it every listening socket and the admin socket.
    Once the new one serves, the old one stops accepting, lets its TCP
    connections finish for its --drain-timeout and exits; if the new one
    fails, the old one serves on and this exits 1 with the reason. SIGUSR2
    to the runtime does the same.
    """
    from l4plan.providers.admin_client import AdminError

    providers = _provider_blocks()
    if "fleet" in providers and "runtime" not in providers:
        raise click.UsageError(
            "restart talks to one runtime: run it on that node, in a directory whose "
            'provider "runtime" block names its admin address'
        )
    client = _admin_client(providers, RESTART_TIMEOUT)
    try:
        answer = client.request("POST", "/v1/restart")
    except AdminError as error:
        raise click.ClickException(str(error)) from None
    if answer.status != 200:
        raise click.ClickException(
            f"the runtime on {client.admin} did not restart: {answer.body.get('error', answer.body)}"
        )
    click.echo(
        f"Restarted the runtime on {client.admin}: pid {answer.body['pid']} serves now; "
        f"pid {answer.body['previous']} finishes its open connections and exits."
    )


def _fleet_status(settings, as_json):
    from l4plan.providers.base import ProviderError
    from l4plan.providers.fleet import FleetProvider

    try:
        provider = FleetProvider("fleet", settings, Path(".").resolve())
        revision, _, _ = provider.desired()
        nodes = provider.nodes()
    except ProviderError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"revision": revision, "nodes": nodes}, indent=2, sort_keys=True))
    else:
        click.echo("\n".join(fleet_lines(provider.where, revision, nodes)))


def fleet_lines(where, revision, nodes):
    """The nodes' reports for people: one row per node, then each node's error."""
    lines = [f"{where}, desired revision {revision}, {len(nodes)} nodes", ""]
    header = ("node", "revision", "status", "listeners", "open", "last seen")
    rows = [header] + [
        (n, str(r["revision"]), r["status"] if r["revision"] >= revision else f"{r['status']} (behind)",
         str(r["listeners"]), str(r["open_connections"]), r["last_seen"])
        for n, r in sorted(nodes.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines += [f"  {n}: {r['error']}" for n, r in sorted(nodes.items()) if r.get("error")]
    return lines


def status_lines(admin, status):
    """GET /v1/status for people: listeners, then counters per rule."""
    pid = f", pid {status['pid']}" if "pid" in status else ""
    lines = [f"runtime on {admin}{pid}, generation {status['generation']}", "", "listeners:"]
    rows = [(one, "") for one in status["listeners"]]
    rows += [(one, " (draining)") for one in status["draining"]]
    width = max((len(one["name"]) for one, _ in rows), default=0)
    lines += [
        f"  {one['name'].ljust(width)}  {one['rule']}  {one['active']} open{note}" for one, note in rows
    ]
    lines += ["  (none)"] * (not rows) + ["", "rules:"]
    for key, c in status["rules"].items():
        lines.append(
            f"  {key}: {c['active']} open, {c['opened']} opened, {c['refused']} refused, "
            f"{c['denied']} denied, {c['origin_failures']} origin failures, "
            f"{c['bytes_in']} bytes in, {c['bytes_out']} bytes out"
        )
    lines += ["  (none)"] * (not status["rules"])
    if "workers" in status:
        lines += ["", "workers:"] + [
            f"  {w['worker']}: pid {w['pid']}, {'alive' if w['alive'] else 'down'}, "
            f"generation {w['generation']}, {w['active']} open, {w['opened']} opened"
            for w in status["workers"]
        ]
    return lines


def _runtime_pid(pid_file):
    """The pid in ``pid_file`` when it is a running `l4plan runtime serve`, else None."""
    try:
        pid = int(pid_file.read_text().strip())
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    is_runtime = (
        any(b"l4plan" in a for a in arguments) and b"runtime" in arguments and b"serve" in arguments
    )
    return pid if is_runtime and _alive(pid) else None


def _alive(pid):
    """Whether ``pid`` runs (a zombie has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@runtime.command()
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the runtime to drain and exit.",
)
def stop(timeout):
    """Stop the runtime l4plan started here.

    Sends SIGTERM to the pid in .l4plan/runtime.pid, only when it is an
    l4plan runtime, then waits for it to exit (open TCP connections drain
    first).
    """
    pid_file = DATA_DIR / model.PID_FILE
    if not pid_file.exists():
        raise click.ClickException(
            f"no {pid_file} here: l4plan started no runtime in this directory "
            "(stop a foreground `l4plan runtime serve` with Ctrl-C)"
        )
    pid = _runtime_pid(pid_file)
    if pid is None:
        pid_file.unlink()
        click.echo(f"The runtime of {pid_file} is not running; removed the stale pid file.")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"the runtime (pid {pid}) is still draining connections after {timeout:g} s; "
                "run stop again to close them now"
            )
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    click.echo(f"Stopped the runtime (pid {pid}).")


COMMANDS = (runtime,)
