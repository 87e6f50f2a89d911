"""State surgery (state list/show/rm/mv/pull/push) and force-unlock.

Thin commands over the configuration's state backend: every write takes the
lock and is a compare-and-swap there.
"""

import json
from contextlib import contextmanager

import click

from l4plan import state as backend
from l4plan.apply import backend_in
from l4plan.cli.options import ask_yes, closed_after, lock_timeout_option
from l4plan.diagnostics import ConfigError


def _backend(ctx, param, value):
    """--state (a local state file), else the configuration's backend."""
    if value is not None:
        return backend.LocalBackend.at(value)
    try:
        return closed_after(backend_in("."))
    except ConfigError as error:
        raise click.BadParameter(
            f"the configuration cannot be read ({error.diagnostics[0].summary}); "
            "give a local state file with --state",
            ctx,
            param,
        ) from None
    except backend.StateError as error:
        raise click.ClickException(str(error)) from None


state_backend_option = click.option(
    "--state",
    "store",
    type=click.Path(dir_okay=False),
    callback=_backend,
    help=(
        "A local state file to use instead of the configuration's backend "
        f"[default: the backend block, else the local {backend.DEFAULT_PATH}]."
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
@state_backend_option
def list_resources(store):
    """List the addresses in the state."""
    with _reported():
        current = store.read().state
    for address in current.resources:
        click.echo(address)


@state.command("show")
@click.argument("address", metavar="ADDR")
@state_backend_option
def show(address, store):
    """Show the resource at ADDR as JSON."""
    with _reported():
        resource = store.read().state.resource(address)
    click.echo(json.dumps(resource.to_dict(), indent=2))


@state.command("rm")
@click.argument("addresses", metavar="ADDR...", nargs=-1, required=True)
@state_backend_option
@lock_timeout_option
def remove(addresses, store, lock_timeout):
    """Forget ADDR: it keeps running, and plans leave it alone until it is imported again."""
    with _reported():
        store.update(lambda s: s.without(*addresses), "state rm", lock_timeout)
    for address in addresses:
        click.echo(f"Removed {address}")


@state.command("mv")
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO")
@state_backend_option
@lock_timeout_option
def move(source, destination, store, lock_timeout):
    """Record the resource at FROM under the address TO (a rename)."""
    with _reported():
        store.update(lambda s: s.moved(source, destination), "state mv", lock_timeout)
    click.echo(f"Moved {source} to {destination}")


@state.command("pull")
@state_backend_option
def pull(store):
    """Print the stored state as JSON (to keep a copy, or to move backends)."""
    with _reported():
        current = store.read().state
    click.echo(backend.encode(current).decode("utf-8"), nl=False)


@state.command("push")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--force",
    is_flag=True,
    help="Replace the state even if FILE has another lineage or a serial not above the stored one.",
)
@state_backend_option
@lock_timeout_option
def push(path, force, store, lock_timeout):
    """Replace the stored state by the state in FILE ("-" for standard input)."""
    with _reported():
        pushed = _pushed(path)
        with store.lock("state push", lock_timeout):
            written = store.push(store.read(), pushed, force)
    click.echo(
        f"Pushed {path} to {store.describe()}: serial {written.state.serial}, "
        f"{len(written.state.resources)} resources"
    )


def _pushed(path):
    with click.open_file(path, "rb") as f:
        raw = f.read()
    return backend.decode_copy(raw, "standard input" if path == "-" else path)


@click.command("force-unlock")
@click.argument("lock_id", metavar="ID")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@state_backend_option
def force_unlock(lock_id, store, force):
    """Remove a stale state lock; ID must be the lock's (the lock error shows it)."""
    with _reported():
        holder = store.read_lock()
    if holder is not None and holder.id == lock_id and not force:
        _confirm_unlock(holder)
    with _reported():
        removed = store.force_unlock(lock_id)
    click.echo(f"Unlocked {store.describe()}: removed the lock {removed.describe()}")


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
