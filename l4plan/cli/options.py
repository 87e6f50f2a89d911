"""Options and helpers shared by several commands."""

import os
import sys
from contextlib import contextmanager

import click

from l4plan.config.variables import VariableInputs, environment_values, parse_var_options, read_var_files
from l4plan.state import InvalidDuration, parse_duration


def variable_options(command):
    """``--var NAME=VALUE`` and ``--var-file FILE``, both repeatable."""
    command = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="Read variable values from an HCL or JSON file (repeatable).",
    )(command)
    return click.option(
        "--var", "var_pairs", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable)."
    )(command)


def no_color_option():
    """``--no-color`` (or NO_COLOR in the environment): this command and the
    ones under it never colour their output. The group gives it to every
    command, before or after whose name it may be typed."""
    return click.Option(
        ["--no-color"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_no_color,
        help="Never colour the output (also NO_COLOR).",
    )


def _no_color(ctx, param, value):
    if value or os.environ.get("NO_COLOR"):
        ctx.color = False


def variable_inputs(var_pairs, var_files):
    return VariableInputs(
        cli=parse_var_options(var_pairs),
        files=read_var_files(var_files),
        environment=environment_values(os.environ),
    )


def print_diagnostics(diagnostics):
    """Diagnostics on stderr, errors in red when colour is on."""
    for diagnostic in diagnostics:
        text = str(diagnostic)
        head, _, rest = text.partition(":")
        colour = "red" if diagnostic.severity == "error" else "yellow"
        click.echo(click.style(head, fg=colour, bold=True) + ":" + rest, err=True)


class DiagnosticsError(click.ClickException):
    """A configuration's diagnostics as a failure: each printed in full, exit 1
    (under --json the group prints them as one JSON object instead)."""

    def __init__(self, diagnostics):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def show(self, file=None):
        print_diagnostics(self.diagnostics)


def ask_yes(question, what, no_terminal):
    """Ask on the terminal, Terraform's way; True only for the answer ``yes``.

    With no terminal to ask on, refuse with ``no_terminal``: an approval is
    never assumed."""
    if not sys.stdin.isatty():
        raise click.ClickException(no_terminal)
    click.echo(
        f"\n{question}\n  l4plan will {what}.\n  Only 'yes' will be accepted to approve.\n"
    )
    try:
        answer = click.prompt("  Enter a value", default="", show_default=False)
    except click.Abort:
        answer = ""
    click.echo()
    return answer == "yes"


def closed_after(backend):
    """``backend``, closed when the command ends (its connections, its lock keepers)."""
    click.get_current_context().call_on_close(backend.close)
    return backend


def comma_list(ctx, param, value):
    """A click callback: ``"a, b,c"`` → ``("a", "b", "c")``; nothing given → ``()``."""
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


class Duration(click.ParamType):
    """A duration such as ``30s``, ``2m``, ``500ms`` or ``0``, in seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except InvalidDuration as error:
            self.fail(str(error), param, ctx)


DURATION = Duration()

lock_timeout_option = click.option(
    "--lock-timeout",
    type=DURATION,
    default="0s",
    show_default=True,
    help="How long to wait for the state lock (e.g. 30s, 2m).",
)


@contextmanager
def usage_errors_exit_one():
    """Usage errors exit 1, not click's 2: to --detailed-exitcode 2 means changes."""
    try:
        yield
    except click.UsageError as error:
        error.exit_code = 1  # type: ignore[misc]  # click declares it on the class
        raise
