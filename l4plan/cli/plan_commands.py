"""plan, apply, destroy, show and import: parse, call l4plan.apply, render.

The engine never prints; these commands pick the renderer, ask for approval
and turn every engine error into ``Error: …`` on stderr with exit 1 (under
``--json`` the top-level group prints it as JSON diagnostics instead).
"""

import io
import json
import shlex
import sys
from contextlib import contextmanager

import click

from l4plan import apply as engine
from l4plan.cli.options import (
    DiagnosticsError,
    ask_yes,
    closed_after,
    comma_list,
    lock_timeout_option,
    usage_errors_exit_one,
    variable_inputs,
    variable_options,
)
from l4plan.diagnostics import ConfigError
from l4plan.plan import PlanError
from l4plan.planfile import PlanFileError, load_plan, save_plan
from l4plan.providers.base import ProviderError
from l4plan.render.json_renderer import JsonRenderer
from l4plan.render.markdown import MarkdownRenderer
from l4plan.render.text import TextRenderer
from l4plan.state import StateError

ERRORS = (engine.EngineError, StateError, PlanError, PlanFileError, ProviderError)
TARGET_WARNING = (
    "Warning: --target is in effect, so the plan may be incomplete: addresses "
    "not targeted keep what they have. Use it for exceptions, not routinely.\n"
)
NO_TERMINAL = (
    "Refusing to apply without approval: there is no terminal to ask on. "
    "Review the plan and run again with --auto-approve, or apply a saved plan "
    "(l4plan plan --out FILE, then l4plan apply FILE)."
)


@contextmanager
def _reported():
    """Config errors as diagnostics, every other engine error as ``Error: …``."""
    try:
        yield
    except ConfigError as error:
        raise DiagnosticsError(error.diagnostics) from None
    except ERRORS as error:
        raise click.ClickException(str(error)) from None


def _colour():
    """Colour on a terminal, never with --no-color or NO_COLOR."""
    ctx = click.get_current_context()
    return ctx.color if ctx.color is not None else sys.stdout.isatty()


def _echo_plan(plan, renderer=None):
    buffer = io.StringIO()
    (renderer or TextRenderer(color=_colour())).render(plan, buffer)
    click.echo(buffer.getvalue(), nl=False)


def planning_options(command):
    """The options that decide what a plan contains (plan, apply, destroy)."""
    for option in reversed(
        (
            click.option(
                "--target",
                "targets",
                multiple=True,
                metavar="ADDR",
                help="Plan only ADDR (repeatable); other addresses stay as they are.",
            ),
            click.option(
                "--refresh/--no-refresh",
                default=True,
                help="Read the runtime first, to find drift (default: on).",
            ),
            click.option(
                "--force",
                is_flag=True,
                help="Allow destroying or replacing more than a third of the applications.",
            ),
            lock_timeout_option,
            variable_options,
        )
    ):
        command = option(command)
    return command


refresh_only_option = click.option(
    "--refresh-only",
    is_flag=True,
    help="Only record in the state what changed outside of l4plan.",
)


def _plan_options(destroy=False, targets=(), refresh=True, refresh_only=False, force=False, lock_timeout=0.0):
    """The typed options; warns on stderr, as Terraform does, that --target is partial."""
    if refresh_only and (destroy or not refresh):
        raise click.UsageError(
            "--refresh-only cannot be combined with --destroy or --no-refresh"
        )
    if targets:
        click.echo(TARGET_WARNING, err=True)
    return engine.PlanOptions(
        destroy=destroy,
        targets=tuple(targets),
        refresh=refresh,
        refresh_only=refresh_only,
        force=force,
        lock_timeout=lock_timeout,
    )


def _progress(line):
    """A provider's progress line, on standard error as it happens."""
    click.echo(line, err=True)


def _workspace(var_pairs, var_files):
    workspace = engine.open_workspace(".", variable_inputs(var_pairs, var_files), _progress)
    closed_after(workspace.backend)
    return workspace


# --- plan --------------------------------------------------------------------


class PlanCommand(click.Command):
    """Usage errors exit 1, not click's 2: to --detailed-exitcode 2 means changes."""

    def parse_args(self, ctx, args):
        with usage_errors_exit_one():
            return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with usage_errors_exit_one():
            return super().invoke(ctx)


@click.command(cls=PlanCommand)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Save the plan to FILE for apply.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the plan as JSON (schemas/plan.schema.json).",
)
@click.option(
    "--markdown", is_flag=True, help="Print the plan as a pull-request comment."
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option(
    "--destroy", is_flag=True, help="Plan to destroy everything in the state."
)
@refresh_only_option
@planning_options
def plan(out, as_json, markdown, detailed_exitcode, var_pairs, var_files, **planning):
    """Show what apply would change, and change nothing."""
    if as_json and markdown:
        raise click.UsageError("--json and --markdown cannot be used together")
    options = _plan_options(**planning)
    with _reported():
        proposal = engine.plan(_workspace(var_pairs, var_files), options)
    if out:
        _save(out, proposal)
    renderer = JsonRenderer() if as_json else MarkdownRenderer() if markdown else None
    _echo_plan(proposal.plan, renderer)
    if renderer is None:
        _plan_notes(proposal, out)
    if detailed_exitcode and proposal.pending:
        raise SystemExit(2)


def _save(out, proposal):
    try:
        save_plan(out, proposal.plan, proposal.desired)
    except OSError as error:
        raise click.ClickException(
            f"Cannot save the plan to {out}: {error.strerror}"
        ) from None


def _plan_notes(proposal, out):
    if out:
        workdir = (click.get_current_context().find_root().obj or {}).get("workdir")
        where = f"-C {shlex.quote(workdir)} " if workdir else ""
        click.echo(
            f"\nSaved the plan to: {out}\n\n"
            f"To perform exactly these actions, run:\n    l4plan {where}apply {shlex.quote(out)}"
        )


# --- apply and destroy -------------------------------------------------------


QUESTIONS = {
    "destroy": (
        "Do you really want to destroy everything?",
        "destroy every object in the state",
    ),
    "destroy-targeted": (
        "Do you really want to destroy the objects shown above?",
        "destroy them (and only them, as --target asks)",
    ),
    "refresh-only": (
        "Would you like to update the state to reflect these detected changes?",
        "write these changes to the state without changing the runtime",
    ),
    "normal": (
        "Do you want to perform these actions?",
        "perform the actions described above",
    ),
}


def _reviewer(auto_approve, options):
    """Show the plan; ask for ``yes`` when it would change something."""

    def review(proposal):
        _echo_plan(proposal.plan)
        if proposal.canary and proposal.plan.has_changes:
            click.echo(f"\nCanary: {', '.join(proposal.canary)} take this change first, then every other node.")
        if not proposal.pending or auto_approve:
            return True
        targeted = options.destroy and options.targets
        return ask_yes(*QUESTIONS["destroy-targeted" if targeted else options.mode], NO_TERMINAL)

    return review


def _complete(outcome, word="Apply"):
    if not outcome.applied:
        return
    summary = outcome.proposal.plan.summary
    click.echo(
        "\n"
        + click.style(f"{word} complete!", fg="green", bold=True)
        + f" Resources: {summary['add']} added, {summary['change']} changed, "
        f"{summary['destroy']} destroyed."
    )


@click.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--destroy", is_flag=True, help="Destroy everything in the state.")
@click.option(
    "--canary",
    metavar="NODE[,NODE...]",
    callback=comma_list,
    help="With provider fleet: these nodes take the change first; the rest once they serve it.",
)
@refresh_only_option
@planning_options
def apply(planfile, auto_approve, canary, var_pairs, var_files, **planning):
    """Apply PLANFILE, or plan, show the plan and apply it once approved.

    A saved plan applies without a prompt and is refused once the state has
    changed. Without one, only 'yes' approves; with no terminal to ask on,
    apply refuses unless --auto-approve is given.
    """
    options = _plan_options(**planning)
    if planfile and options != engine.PlanOptions(lock_timeout=options.lock_timeout):
        raise click.UsageError(
            "a saved plan carries its own options; give only PLANFILE"
        )
    with _reported():
        workspace = _workspace(var_pairs, var_files)
        if planfile:
            saved = load_plan(planfile)
            _echo_plan(saved.plan)
            outcome = engine.apply_saved(workspace, saved, options.lock_timeout, canary)
        else:
            outcome = engine.apply(workspace, options, _reviewer(auto_approve, options), canary)
    _complete(outcome)


@click.command()
@click.option("--auto-approve", is_flag=True, help="Destroy without asking.")
@planning_options
def destroy(auto_approve, var_pairs, var_files, **planning):
    """Destroy everything l4plan manages (or only --target addresses)."""
    options = _plan_options(destroy=True, **planning)
    with _reported():
        workspace = _workspace(var_pairs, var_files)
        outcome = engine.apply(workspace, options, _reviewer(auto_approve, options))
    _complete(outcome, "Destroy")


# --- show and import ---------------------------------------------------------


@click.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show(planfile, as_json):
    """Show a saved plan, or the state when no PLANFILE is given."""
    with _reported():
        if planfile:
            _echo_plan(load_plan(planfile).plan, JsonRenderer() if as_json else None)
            return
        state = closed_after(engine.backend_in(".")).read().state
    if as_json:
        click.echo(json.dumps(state.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(state_lines(state)))


def state_lines(state):
    """The state for people: one block per resource, values as JSON.

    Lists of objects (rules, origins) show as nested blocks, as in the
    configuration.
    """
    if not state.resources and state.serial:
        return [f"The state is empty: everything l4plan managed was destroyed (serial {state.serial})."]
    if not state.resources:
        return ["The state is empty: nothing has been applied yet."]
    lines = []
    for address, resource in state.resources.items():
        lines += [f"# {address}:", f'{resource.type} "{resource.name}" {{']
        lines += _attribute_lines(resource.attributes, "    ")
        lines += ["}", ""]
    return lines[:-1]


def _attribute_lines(attributes, indent):
    lines, width = [], max((len(k) for k in attributes), default=0)
    for name, value in attributes.items():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) for v in value)
        ):
            for item in value:
                block = _attribute_lines(item, indent + "    ")
                lines += [f"{indent}{name.removesuffix('s')} {{", *block, f"{indent}}}"]
        else:
            lines.append(f"{indent}{name.ljust(width)} = {json.dumps(value)}")
    return lines


@click.command("import")
@click.argument("address", metavar="ADDR")
@click.argument("remote_id", metavar="ID")
@lock_timeout_option
@variable_options
def import_(address, remote_id, lock_timeout, var_pairs, var_files):
    """Adopt the application the runtime runs as ID into the state at ADDR."""
    with _reported():
        workspace = _workspace(var_pairs, var_files)
        engine.import_resource(workspace, address, remote_id, lock_timeout)
    click.echo(
        f'{address}: imported {remote_id} from provider "{workspace.provider.name}".\n\n'
        + click.style("Import successful!", fg="green", bold=True)
        + " l4plan now manages it; run plan to compare it with its configuration."
    )


COMMANDS = (plan, apply, destroy, show, import_)
