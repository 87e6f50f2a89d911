"""plan, apply, destroy, show and import through the CLI, in this process.

The provider is the fake one, found through its entry point; stdin is not a
terminal here (terminal prompts are tested in test_processes.py).
"""

import json
from importlib.resources import files

import click
import jsonschema
import pytest
from click.testing import CliRunner
from engine_helpers import application

from l4plan.cli import main
from l4plan.cli.plan_commands import NO_TERMINAL
from tests.state_files import lock


def applied(project, l4plan, *apps):
    project.write(*apps)
    result = l4plan("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    return result


def test_detailed_exitcode_two_then_zero(project, l4plan):
    """plan says 2 while there are changes, apply makes them, and plan then says 0."""
    project.write(application("game"))
    planned = l4plan("plan", "--detailed-exitcode")
    assert planned.exit_code == 2
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.output
    result = l4plan("apply", "--auto-approve")
    assert result.exit_code == 0
    assert result.output.endswith(
        "\nApply complete! Resources: 2 added, 0 changed, 0 destroyed.\n"
    )
    assert list(project.remote()) == ["application.game"]
    assert project.state()["serial"] == 1
    again = l4plan("plan", "--detailed-exitcode")
    assert (again.exit_code, again.output) == (
        0,
        "No changes. The runtime matches the configuration.\n",
    )


def test_plan_changes_nothing(project, l4plan):
    """plan writes no state and touches no runtime, and leaves no lock."""
    project.write(application("game"))
    assert l4plan("plan").exit_code == 0
    assert sorted(p.name for p in project.path.iterdir()) == [
        "apps.l4.hcl",
        "site.l4.hcl",
    ]


def test_apply_without_terminal_or_approval_refuses(project, l4plan):
    """With stdin not a terminal and no --auto-approve, apply shows the plan and refuses."""
    project.write(application("game"))
    result = l4plan("apply")
    assert result.exit_code == 1
    assert "Plan: 2 to add" in result.stdout
    assert result.stderr == f"Error: {NO_TERMINAL}\n"
    assert project.state_bytes() is None
    assert not (project.path / "remote.json").exists()
    assert not (project.path / "l4plan.state.json.lock").exists()


def test_saved_plan_applies_without_prompt(project, l4plan):
    """apply PLANFILE needs no approval, even without a terminal."""
    project.write(application("game"))
    saved = l4plan("plan", "--out", "reviewed.plan")
    assert "Saved the plan to: reviewed.plan" in saved.output
    assert "l4plan apply reviewed.plan" in saved.output
    result = l4plan("apply", "reviewed.plan")
    assert result.exit_code == 0, result.output
    assert "Apply complete! Resources: 2 added" in result.output
    assert list(project.remote()) == ["application.game"]


def test_unwritable_plan_file_is_an_error(project, l4plan):
    """--out into a missing directory says so, without a traceback."""
    project.write(application("game"))
    result = l4plan("plan", "--out", "missing/p")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: Cannot save the plan to missing/p: No such file or directory\n",
    )


def test_stale_saved_plan_is_refused(project, l4plan):
    """A saved plan is refused once another apply changed the state, and changes nothing."""
    applied(project, l4plan, application("game"))
    project.write(application("game", "8000"))
    assert l4plan("plan", "--out", "old.plan").exit_code == 0
    applied(project, l4plan, application("game", "9000"))
    before = (project.state_bytes(), project.remote())
    result = l4plan("apply", "old.plan")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Saved plan is stale: the state changed since it was made "
        "(serial 1, now 2); run plan again\n"
    )
    assert (project.state_bytes(), project.remote()) == before


def test_foreign_saved_plan_is_refused(project, l4plan):
    """A plan made against another state's lineage is refused."""
    applied(project, l4plan, application("game"))
    project.write(application("game", "8000"))
    assert l4plan("plan", "--out", "game.plan").exit_code == 0
    lineage = project.state()["lineage"]
    (project.path / "l4plan.state.json").unlink()
    (project.path / "remote.json").unlink()
    applied(project, l4plan, application("game"))
    result = l4plan("apply", "game.plan")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: Saved plan was made for another state (lineage {lineage}, "
    )


def test_saved_plan_takes_no_planning_options(project, l4plan):
    """A plan file carries its options; --target beside it is a usage error."""
    project.write(application("game"))
    l4plan("plan", "--out", "p")
    result = l4plan("apply", "p", "--target", "application.game")
    assert result.exit_code == 1
    assert "a saved plan carries its own options; give only PLANFILE" in result.stderr


def test_failed_provider_apply(project, l4plan, monkeypatch):
    """A provider failure is reported with its reason, exits 1, and leaves the state."""
    applied(project, l4plan, application("game"))
    before = project.state_bytes()
    project.write(application("game", "8000"))
    monkeypatch.setenv("L4PLAN_FAKE_FAIL", "port tcp/8000 is in use")
    result = l4plan("apply", "--auto-approve")
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: Apply failed: provider "fake": port tcp/8000 is in use. '
        "The state is unchanged.\n"
    )
    assert project.state_bytes() == before
    assert not (project.path / "l4plan.state.json.lock").exists()


def test_destroy(project, l4plan):
    """destroy --auto-approve removes everything from the runtime and the state."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    result = l4plan("destroy", "--auto-approve")
    assert result.exit_code == 0
    assert "Plan: 0 to add, 0 to change, 3 to destroy." in result.output
    assert result.output.endswith(
        "Destroy complete! Resources: 0 added, 0 changed, 3 destroyed.\n"
    )
    assert project.remote() == {} and project.state()["resources"] == {}


def test_plan_destroy_with_target(project, l4plan):
    """plan --destroy --target plans the deletion of that address alone."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    result = l4plan("plan", "--destroy", "--target", "application.chat")
    assert "# application.chat will be destroyed" in result.output
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in result.output


def test_target_changes_only_the_target(project, l4plan):
    """--target applies one application's change and leaves another's pending."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    project.write(application("game", "7001"), application("chat", "8001"))
    result = l4plan("apply", "--auto-approve", "--target", "application.chat")
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: --target is in effect")
    assert "application.game" not in result.output
    remote = project.remote()
    assert remote["application.chat"]["rules"][0]["edge_port"] == "8001"
    assert remote["application.game"]["rules"][0]["edge_port"] == "7000"
    rest = l4plan("plan", "--detailed-exitcode")
    assert rest.exit_code == 2
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in rest.output


def test_unknown_target_is_an_error(project, l4plan):
    """A target that names nothing is refused."""
    project.write(application("game"))
    result = l4plan("plan", "--target", "application.nope")
    assert result.exit_code == 1
    assert "\nError: --target application.nope matches nothing" in result.stderr


def drift_game(project):
    """Turn on IPv6 for game and delete chat on the runtime, behind l4plan's back."""

    def change(applications):
        applications["application.game"]["ipv6"] = True
        del applications["application.chat"]

    project.edit_remote(change)


def test_drift_is_shown_first(project, l4plan):
    """Changes made outside l4plan come before the plan that undoes them."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    drift_game(project)
    output = l4plan("plan").output
    assert output.startswith("Note: Objects have changed outside of l4plan\n")
    assert output.index(
        "# application.game has changed outside of l4plan"
    ) < output.index("# application.game will be updated in-place")
    assert "# application.chat has been deleted outside of l4plan" in output
    assert "Plan: 1 to add, 1 to change, 0 to destroy." in output


def test_no_refresh_ignores_drift(project, l4plan):
    """--no-refresh plans against the state alone."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    drift_game(project)
    result = l4plan("plan", "--no-refresh", "--detailed-exitcode")
    assert result.exit_code == 0


def test_refresh_only_records_drift(project, l4plan):
    """--refresh-only plans no change, exits 2 for drift, and apply writes it to the state only."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    drift_game(project)
    remote = project.remote()
    planned = l4plan("plan", "--refresh-only", "--detailed-exitcode")
    assert planned.exit_code == 2
    assert planned.output.endswith(
        "This is a refresh-only plan, so l4plan will not undo these changes. Applying "
        "it records them in the state and changes nothing on the runtime.\n"
    )
    assert "No changes. The runtime matches the configuration." not in planned.output
    result = l4plan("apply", "--refresh-only", "--auto-approve")
    assert result.exit_code == 0, result.output
    state = project.state()
    assert state["serial"] == 2
    assert sorted(state["resources"]) == ["application.game", "site.example.com"]
    assert state["resources"]["application.game"]["attributes"]["ipv6"] is True
    assert project.remote() == remote
    again = l4plan("plan", "--refresh-only", "--detailed-exitcode")
    assert (again.exit_code, again.output) == (
        0,
        "No changes. The runtime still matches the state: l4plan read every object "
        "it manages and found no differences.\n",
    )


def test_refresh_only_conflicts_with_destroy(project, l4plan):
    """--refresh-only with --destroy is a usage error."""
    project.write(application("game"))
    result = l4plan("apply", "--refresh-only", "--destroy")
    assert result.exit_code == 1
    assert (
        "--refresh-only cannot be combined with --destroy or --no-refresh"
        in result.stderr
    )


def test_import_then_no_changes(project, l4plan):
    """An application running on the provider is adopted, and then matches its block."""
    applied(project, l4plan, application("game"), application("chat", "8000"))
    assert l4plan("state", "rm", "application.chat").exit_code == 0
    result = l4plan("import", "application.chat", "chat")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        'application.chat: imported chat from provider "fake".'
    )
    assert project.state()["resources"]["application.chat"]["identity"] == {
        "id": "chat"
    }
    assert l4plan("plan", "--detailed-exitcode").exit_code == 0


def test_import_of_unknown_id(project, l4plan):
    """Importing an ID the provider does not run fails and writes nothing."""
    project.write(application("game"))
    result = l4plan("import", "application.game", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: provider \"fake\" runs no application named 'nope' (it runs: none); "
        "check the ID\n"
    )
    assert project.state_bytes() is None


def test_prevent_destroy_blocks_plan(project, l4plan):
    """Removing a protected application is a plan error naming it; exit 1."""
    applied(
        project, l4plan, application("game", protect=True), application("chat", "8000")
    )
    project.write(application("chat", "8000"))
    result = l4plan("plan", "--detailed-exitcode")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: application.game has lifecycle.prevent_destroy set, but this plan "
        "would destroy it."
    )


def test_force_gate(project, l4plan):
    """Deleting 4 of 10 applications needs --force."""
    apps = [application(f"app{i}", str(7000 + i)) for i in range(10)]
    applied(project, l4plan, *apps)
    project.write(*apps[4:])
    refused = l4plan("apply", "--auto-approve")
    assert refused.exit_code == 1
    assert refused.stderr.endswith("4 of 10, more than 33%; --force required\n")
    assert len(project.remote()) == 10
    forced = l4plan("apply", "--auto-approve", "--force")
    assert forced.exit_code == 0 and len(project.remote()) == 6


def plan_schema():
    return json.loads(files("l4plan.schemas").joinpath("plan.schema.json").read_text())


def test_plan_json_and_markdown(project, l4plan):
    """--json prints only the schema-valid plan; --markdown prints the PR comment."""
    project.write(application("game"))
    result = l4plan("plan", "--json", "--out", "p")
    document = json.loads(result.stdout)
    jsonschema.validate(document, plan_schema())
    assert document["summary"] == {"add": 2, "change": 0, "destroy": 0}
    markdown = l4plan("plan", "--markdown").stdout
    assert markdown.startswith("<!-- l4plan-plan -->")
    both = l4plan("plan", "--json", "--markdown")
    assert both.exit_code == 1
    assert "--json and --markdown cannot be used together" in both.stdout


def _failing_with_json(project, l4plan, *args):
    """The one JSON diagnostics object a failing command prints under --json."""
    result = l4plan(*args)
    assert (result.exit_code, result.stderr) == (1, ""), result.output
    document = json.loads(result.stdout)
    assert (document["valid"], document["error_count"], document["warning_count"]) == (False, 1, 0)
    assert document["diagnostics"][0]["severity"] == "error"
    return document["diagnostics"][0]


def test_config_error_under_json_keeps_its_place(project, l4plan):
    """A configuration error under plan --json names the file and line in the diagnostic."""
    project.write(application("game").replace('"7000"', '"70000"'))
    diagnostic = _failing_with_json(project, l4plan, "plan", "--json")
    assert (diagnostic["filename"], diagnostic["line"] > 0) == ("apps.l4.hcl", True)
    assert "70000" in diagnostic["summary"] + diagnostic["detail"]


def test_every_failure_under_json_is_one_json_object(project, l4plan):
    """Lock, provider, state, saved plan and usage errors: stdout is one JSON object, stderr empty."""
    project.write(application("game"))
    with lock(project.path / "l4plan.state.json", "apply"):
        locked = _failing_with_json(project, l4plan, "plan", "--json")
    assert locked["summary"].startswith("Error acquiring the state lock: held by ")
    usage = _failing_with_json(project, l4plan, "plan", "--json", "--bogus")
    assert usage["summary"].startswith("No such option '--bogus'")
    assert usage["detail"].startswith("Usage: ") and " plan [OPTIONS]\n" in usage["detail"]
    missing = _failing_with_json(project, l4plan, "show", "nope.plan", "--json")
    assert missing["summary"] == "Cannot read saved plan nope.plan: No such file or directory"
    runtime = _failing_with_json(project, l4plan, "runtime", "status", "--json")
    assert runtime["summary"].startswith("no runtime answers on unix:.l4plan/runtime.sock")
    (project.path / "l4plan.state.json").write_text("{")
    assert "l4plan.state.json" in _failing_with_json(project, l4plan, "show", "--json")["summary"]
    (project.path / "l4plan.state.json").unlink()
    (project.path / "site.l4.hcl").write_text(
        'site "example.com" {\n  plan = "enterprise"\n}\nprovider "nope" {}\n'
    )
    provider = _failing_with_json(project, l4plan, "plan", "--json")
    assert provider["summary"].startswith('site.l4.hcl:4: Unknown provider "nope"')


def test_plan_usage_errors_exit_one(project, l4plan):
    """A bad flag of plan exits 1, never 2, which --detailed-exitcode keeps for changes."""
    project.write(application("game"))
    bad_flag = l4plan("plan", "--detailed-exitcode", "--bogus")
    assert bad_flag.exit_code == 1 and "No such option '--bogus'" in bad_flag.stderr
    conflict = l4plan("plan", "--detailed-exitcode", "--refresh-only", "--destroy")
    assert conflict.exit_code == 1


def test_show_saved_plan_text_and_json(project, l4plan):
    """show PLANFILE prints the saved plan as text or as schema-valid JSON."""
    project.write(application("game"))
    text = l4plan("plan", "--out", "p").stdout
    assert l4plan("show", "p").stdout == text.split("\nSaved the plan to")[0]
    shown = json.loads(l4plan("show", "p", "--json").stdout)
    jsonschema.validate(shown, plan_schema())
    assert shown == json.loads(l4plan("plan", "--json").stdout)


def test_show_after_destroy_says_everything_was_destroyed(project, l4plan):
    """After destroy, show does not claim that nothing was ever applied."""
    applied(project, l4plan, application("game"))
    assert l4plan("destroy", "--auto-approve").exit_code == 0
    assert l4plan("show").stdout == (
        "The state is empty: everything l4plan managed was destroyed (serial 2).\n"
    )


def test_show_state(project, l4plan):
    """show prints the state as blocks, or its JSON document."""
    assert (
        l4plan("show").stdout == "The state is empty: nothing has been applied yet.\n"
    )
    applied(project, l4plan, application("game"))
    text = l4plan("show").stdout
    assert text.startswith('# application.game:\napplication "game" {\n    domain ')
    assert '    rule {\n        client_ip_passthrough = "off"\n' in text
    assert json.loads(l4plan("show", "--json").stdout) == project.state()


def test_config_error_prints_diagnostics(project, l4plan):
    """A broken configuration is reported as diagnostics with exit 1."""
    project.write(application("game").replace('"7000"', '"70000"'))
    result = l4plan("plan")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "apps.l4.hcl" in result.stderr


def test_unknown_provider_is_an_error(project, l4plan):
    """A provider no package provides is named, with those installed."""
    project.write(application("game"))
    (project.path / "site.l4.hcl").write_text(
        'site "example.com" {\n  plan = "enterprise"\n}\nprovider "nope" {}\n'
    )
    result = l4plan("plan")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        'Error: site.l4.hcl:4: Unknown provider "nope" (installed providers: '
    )
    assert "fake" in result.stderr


def test_plan_waits_for_no_lock_by_default(project, l4plan):
    """With the state locked, plan fails at once naming the holder."""
    project.write(application("game"))
    with lock(project.path / "l4plan.state.json", "apply"):
        result = l4plan("plan")
    assert result.exit_code == 1
    assert "Error: Error acquiring the state lock: held by " in result.stderr
    assert "for apply" in result.stderr


def test_state_commands_use_the_backend_path(project, l4plan):
    """state list without --state reads the state file the backend block names."""
    (project.path / "site.l4.hcl").write_text(
        (project.path / "site.l4.hcl").read_text()
        + 'backend "local" {\n  path = "states/live.json"\n}\n'
    )
    (project.path / "states").mkdir()
    applied(project, l4plan, application("game"))
    assert (project.path / "states/live.json").exists()
    listed = l4plan("state", "list")
    assert listed.output == "application.game\nsite.example.com\n"
    assert l4plan("show").stdout.startswith("# application.game:\n")


def test_state_commands_with_a_broken_configuration(project, l4plan):
    """An unreadable configuration asks for --state instead of guessing."""
    (project.path / "apps.l4.hcl").write_text("application {")
    result = l4plan("state", "list")
    assert result.exit_code == 1
    assert "give a local state file with --state" in result.stderr
    assert l4plan("state", "list", "--state", "x.json").exit_code == 0


def test_saved_plan_hint_keeps_the_working_directory(project, l4plan):
    """With -C, the hint to apply a saved plan repeats -C so it can be pasted as is."""
    project.write(application("game"))
    result = l4plan("-C", project.path, "plan", "--out", "my plan")
    assert result.output.endswith(
        f"To perform exactly these actions, run:\n    l4plan -C {project.path} apply 'my plan'\n"
    )


def test_var_files_that_cannot_be_read_say_why(project, l4plan):
    """A var-file with bad syntax, bytes that are not UTF-8, or bad JSON gets a plain message."""
    project.write(application("game"))
    (project.path / "bad.hcl").write_text('x = "unterminated\n')
    (project.path / "bin.hcl").write_bytes(b'x = "\xff"\n')
    (project.path / "bad.json").write_text('{"x": 1')
    messages = {
        "bad.hcl": "Error: bad.hcl:1:5: invalid HCL syntax: this string is never closed\n",
        "bin.hcl": "Error: bin.hcl:1: the file is not UTF-8 text (byte 5 is 0xff)\n",
        "bad.json": "Error: bad.json:1:8: invalid JSON in the variable file: Expecting ',' delimiter\n",
    }
    for name, message in messages.items():
        result = l4plan("validate", "--var-file", name)
        assert result.exit_code == 1
        assert result.stderr.startswith(message), result.stderr
        assert "Token(" not in result.stderr and "codec" not in result.stderr


def test_a_byte_order_mark_is_accepted_and_binary_is_refused(project, l4plan):
    """A UTF-8 byte-order mark is dropped; a binary configuration file is refused by name."""
    project.write(application("game"))
    site = project.path / "site.l4.hcl"
    site.write_bytes(b"\xef\xbb\xbf" + site.read_bytes())
    assert l4plan("validate").exit_code == 0
    (project.path / "junk.l4.hcl").write_bytes(b"\x00\x01\xff")
    result = l4plan("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: junk.l4.hcl:1: the file is not UTF-8 text (byte 2 is 0xff)\n")


def test_missing_site_asks_for_a_block(project, l4plan):
    """Without a site the advice is a site block, not an attribute."""
    (project.path / "site.l4.hcl").unlink()
    project.write(application("game"))
    result = l4plan("validate")
    assert result.exit_code == 1
    assert 'missing "site" block\n  Declare the zone once: site "example.com" { plan = "enterprise" }.' in result.stderr


@pytest.mark.parametrize("args", [("validate",), ("plan",), ("show",), ("state", "list"), ("schema",)])
def test_no_color_before_or_after_the_command(project, args):
    """--no-color is taken before the subcommand and after it, by every command."""
    project.write(application("game"))

    def output(*line):
        result = CliRunner().invoke(main, list(line), color=True)
        assert result.exit_code == 0, result.output
        return result.output

    coloured = output(*args)
    assert output("--no-color", *args) == output(*args, "--no-color") == click.unstyle(coloured)
    assert ("\x1b[" in coloured) == (args == ("validate",))  # "Success!" is styled
