"""`l4plan runtime`: run the proxy runtime (the data path lives in l4plan.runtime)."""

import ipaddress

import click


def _address(version):
    """A click callback accepting only an IP address of C{version}."""

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
    """Run the Layer 4 proxy runtime."""


@runtime.command()
@click.option(
    "--data-dir",
    default=".l4plan",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory holding applied.json, the document served at start.",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    callback=_address(4),
    help="IPv4 address the edge ports listen on.",
)
@click.option(
    "--bind6",
    default="::1",
    show_default=True,
    callback=_address(6),
    help="IPv6 address for applications with ipv6 on.",
)
@click.option(
    "--drain-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds open TCP connections may finish after a stop.",
)
@click.option(
    "--connect-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for an origin to accept a TCP connection.",
)
@click.option(
    "--idle-timeout",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a TCP connection may stay without traffic.",
)
@click.option(
    "--udp-idle-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a UDP session may stay without traffic.",
)
@click.option(
    "--max-connections",
    default=10000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Concurrent TCP connections per rule; more are refused.",
)
@click.option(
    "--max-sessions",
    default=10000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Concurrent UDP sessions per rule; datagrams of more clients are dropped.",
)
@click.option(
    "--dns-ttl",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a resolved origin host name is reused.",
)
def serve(**options):
    """Run the proxy runtime in the foreground until SIGTERM or SIGINT.

    Prints one "listening PROTOCOL ADDRESS:PORT" line per edge socket, then
    "ready". On SIGTERM/SIGINT it stops accepting, lets TCP connections drain
    for --drain-timeout seconds (a second signal closes them at once), prints
    the per-rule counters as one JSON line and exits 0.
    """
    # Twisted is imported only when a runtime runs, not for every l4plan command.
    from twisted.internet.error import CannotListenError

    from l4plan.runtime.document import DocumentError
    from l4plan.runtime.serve import Settings, run

    try:
        raise SystemExit(run(Settings(**options)))
    except DocumentError as error:
        raise click.ClickException(
            f"{error}\nFix the document, or remove it to start empty."
        ) from error
    except CannotListenError as error:
        raise click.ClickException(
            f"{error}\nAnother process uses this port; stop it or change the rule."
        ) from error


COMMANDS = (runtime,)
