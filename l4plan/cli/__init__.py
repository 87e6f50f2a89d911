"""The command line: thin click commands that call the engine.

Each module of this package holds one family of commands; this one builds the
top-level group, its ``-C``, and ``--no-color``, which every command takes.
"""

import json
import os
from contextlib import contextmanager
from itertools import takewhile

import click

from l4plan import __version__
from l4plan.cli.options import no_color_option, usage_errors_exit_one
from l4plan.diagnostics import Diagnostic, report
from l4plan.hcl2_tree import Hcl2Mismatch

#: ctx.meta key: the command line asks for --json, so a failure is JSON too.
JSON_WANTED = "l4plan.json"


class _Group(click.Group):
    """The top-level group, the one home of how a failure ends a command: a
    usage error exits 1, like every other error, because
    ``--detailed-exitcode`` gives 2 the meaning "changes present"; an
    operating-system error no command foresaw is still one line; and with
    ``--json`` anywhere before ``--``, every failure, a usage error too, is
    one JSON diagnostics object on stdout."""

    def make_context(self, info_name, args, parent=None, **extra):
        as_json = "--json" in takewhile(lambda arg: arg != "--", args)
        with _failures(as_json):
            ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta[JSON_WANTED] = as_json
        return ctx

    def invoke(self, ctx):
        with _failures(ctx.meta[JSON_WANTED]):
            return super().invoke(ctx)


@contextmanager
def _failures(as_json):
    try:
        with usage_errors_exit_one():
            try:
                yield
            except OSError as error:  # the last net: one line, never a traceback
                where = f" ({error.filename})" if error.filename else ""
                raise click.ClickException(f"{error.strerror or error}{where}") from None
            except Hcl2Mismatch as error:
                raise click.ClickException(str(error)) from None
    except click.ClickException as error:
        if not as_json:
            raise
        raise _JsonFailure(_diagnostics_of(error)) from None


class _JsonFailure(click.ClickException):
    """A failure under --json: its diagnostics as validate --json prints them, exit 1."""

    def __init__(self, diagnostics):
        self.diagnostics = diagnostics
        super().__init__(diagnostics[0].summary)

    def show(self, file=None):
        click.echo(json.dumps(report(self.diagnostics), indent=2))


def _diagnostics_of(error):
    """A configuration's diagnostics as they are; any other error as one, its
    first line the summary and the rest (or a usage error's usage) the detail."""
    if getattr(error, "diagnostics", None):
        return error.diagnostics
    summary, _, detail = error.format_message().partition("\n")
    if isinstance(error, click.UsageError) and error.ctx is not None:
        detail = f"{error.ctx.get_usage()}\nTry '{error.ctx.command_path} --help' for help."
    return (Diagnostic(summary, detail),)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="l4plan")
@click.option(
    "-C",
    "workdir",
    type=click.Path(exists=True, file_okay=False),
    help="Work in DIR instead of the current directory.",
)
@click.pass_context
def main(ctx, workdir):
    """Infrastructure as code for Layer 4 (TCP/UDP) proxy applications."""
    if workdir:
        os.chdir(workdir)
    ctx.obj = {"workdir": workdir}


def _register():
    from l4plan.cli import config_commands, fmt_command, plan_commands, runtime_commands, state_commands

    for module in (config_commands, fmt_command, plan_commands, state_commands, runtime_commands):
        for command in module.COMMANDS:
            main.add_command(command)
    _give_every_command(main, no_color_option)


def _give_every_command(command, make_option):
    """``command`` and every command under it take the option ``make_option``
    makes, so ``l4plan plan --no-color`` works as ``l4plan --no-color plan``."""
    command.params.append(make_option())
    for subcommand in getattr(command, "commands", {}).values():
        _give_every_command(subcommand, make_option)


_register()
