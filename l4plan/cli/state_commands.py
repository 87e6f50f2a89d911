"""State surgery (state list/show/rm/mv) and force-unlock.

Thin commands over ``l4plan.state``: every write takes the lock and is atomic
there. ``DURATION`` and ``lock_timeout_option`` are for any command that
takes ``--lock-timeout``.
"""

import json
from contextlib import contextmanager

import click

from l4plan import state as backend
from l4plan.apply import state_path_in
from l4plan.cli.options import ask_yes
from l4plan.diagnostics import ConfigError


class Duration(click.ParamType):
    """A duration such as ``30s``, ``2m``, ``500ms`` or ``0``, in seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return backend.parse_duration(value)
        except backend.InvalidDuration as error:
            self.fail(str(error), param, ctx)


DURATION = Duration()

lock_timeout_option = click.option(
    "--lock-timeout",
    type=DURATION,
    default="0s",
    show_default=True,
    help="How long to wait for the state lock (e.g. 30s, 2m).",
)


def _configured_state_path(ctx, param, value):
    """--state, else the configuration's backend path, else the default."""
    if value is not None:
        return value
    try:
        return str(state_path_in("."))
    except ConfigError as error:
        raise click.BadParameter(
            f"the configuration cannot be read ({error.diagnostics[0].summary}); "
            "give the state file with --state",
            ctx,
            param,
        ) from None


state_path_option = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    callback=_configured_state_path,
    help=(
        "The state file of the local backend "
        f"[default: the backend block's path, else {backend.DEFAULT_PATH}]."
    ),
)


@contextmanager
def _reported():
    """Print state errors as ``Error: ...`` and exit 1."""
    try:
        yield
    except backend.StateError as error:
        raise click.ClickException(str(error)) from error


@click.group()
def state():
    """Inspect and edit the recorded state."""


@state.command("list")
@state_path_option
def list_resources(state_path):
    """List the addresses in the state."""
    with _reported():
        current = backend.read_state(state_path)
    for address in current.resources:
        click.echo(address)


@state.command("show")
@click.argument("address", metavar="ADDR")
@state_path_option
def show(address, state_path):
    """Show the resource at ADDR as JSON."""
    with _reported():
        resource = backend.read_state(state_path).resource(address)
    click.echo(json.dumps(resource.to_dict(), indent=2))


@state.command("rm")
@click.argument("addresses", metavar="ADDR...", nargs=-1, required=True)
@state_path_option
@lock_timeout_option
def remove(addresses, state_path, lock_timeout):
    """Forget ADDR: it keeps running, and plans leave it alone until it is imported again."""
    with _reported():
        backend.update_state(
            state_path, lambda s: s.without(*addresses), "state rm", lock_timeout
        )
    for address in addresses:
        click.echo(f"Removed {address}")


@state.command("mv")
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO")
@state_path_option
@lock_timeout_option
def move(source, destination, state_path, lock_timeout):
    """Record the resource at FROM under the address TO (a rename)."""
    with _reported():
        backend.update_state(
            state_path,
            lambda s: s.moved(source, destination),
            "state mv",
            lock_timeout,
        )
    click.echo(f"Moved {source} to {destination}")


@click.command("force-unlock")
@click.argument("lock_id", metavar="ID")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@state_path_option
def force_unlock(lock_id, state_path, force):
    """Remove a stale state lock; ID must be the lock's (the lock error shows it)."""
    with _reported():
        holder = backend.read_lock(state_path)
    if holder is not None and holder.id == lock_id and not force:
        _confirm_unlock(holder)
    with _reported():
        removed = backend.force_unlock(state_path, lock_id)
    click.echo(f"Unlocked {state_path}: removed the lock {removed.describe()}")


def _confirm_unlock(holder):
    """Terraform's question: a lock may belong to a process still at work."""
    if not ask_yes(
        "Do you really want to force-unlock?",
        f"remove the lock {holder.describe()}; if that process is still at "
        f"work, two writers may then change the state at once",
        f"Refusing to force-unlock without confirmation: the lock is "
        f"{holder.describe()}, and there is no terminal to ask on. Make sure "
        f"that process is gone, then run again with --force.",
    ):
        raise click.ClickException("force-unlock cancelled; the lock is kept.")


COMMANDS = (state, force_unlock)
