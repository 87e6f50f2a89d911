"""The command line: thin click commands that call the engine.

Each module of this package holds one family of commands; this one builds the
top-level group and the options every command shares (``-C``, ``--no-color``).
"""

import os

import click

from l4plan import __version__
from l4plan.cli.options import usage_errors_exit_one
from l4plan.hcl2_tree import Hcl2Mismatch


class _Group(click.Group):
    """The top-level group: a usage error exits 1, like every other error,
    because ``--detailed-exitcode`` gives 2 the meaning "changes present";
    an operating-system error no command foresaw is still one line."""

    def make_context(self, info_name, args, parent=None, **extra):
        with usage_errors_exit_one():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx):
        with usage_errors_exit_one():
            try:
                return super().invoke(ctx)
            except OSError as error:  # the last net: one line, never a traceback
                where = f" ({error.filename})" if error.filename else ""
                raise click.ClickException(f"{error.strerror or error}{where}") from None
            except Hcl2Mismatch as error:
                raise click.ClickException(str(error)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="l4plan")
@click.option(
    "-C",
    "workdir",
    type=click.Path(exists=True, file_okay=False),
    help="Work in DIR instead of the current directory.",
)
@click.option("--no-color", is_flag=True, help="Never colour the output (also NO_COLOR).")
@click.pass_context
def main(ctx, workdir, no_color):
    """Infrastructure as code for Layer 4 (TCP/UDP) proxy applications."""
    if workdir:
        os.chdir(workdir)
    ctx.obj = {"workdir": workdir}
    ctx.color = False if (no_color or os.environ.get("NO_COLOR")) else None


def _register():
    from l4plan.cli import config_commands, fmt_command, plan_commands, runtime_commands, state_commands

    for module in (config_commands, fmt_command, plan_commands, state_commands, runtime_commands):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
