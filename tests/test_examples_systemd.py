"""examples/systemd: the unit runs commands l4plan accepts, and reload finds the
runtime that ExecStart started (the admin socket at restart's default)."""

import shlex
from pathlib import Path

from l4plan import model
from l4plan.cli import main

UNITS = Path(__file__).resolve().parents[1] / "examples" / "systemd"


def unit(name):
    """A unit file as {(section, key): value}, continuation lines joined."""
    values, section = {}, None
    text = (UNITS / name).read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values[section, key] = value
    return values


def l4plan_arguments(command):
    program, *arguments = shlex.split(command)
    assert program.endswith("/bin/l4plan")
    return arguments


def test_execstart_is_a_serve_command_line_l4plan_accepts():
    service = unit("l4plan-runtime.service")
    arguments = l4plan_arguments(service["Service", "ExecStart"])
    assert arguments[:2] == ["runtime", "serve"]
    options = main.commands["runtime"].commands["serve"].make_context("serve", arguments[2:]).params
    assert options["admin"] == model.DEFAULT_PROVIDER.attributes["admin"]  # where restart looks
    assert options["pid_file"] == f"{model.DATA_DIR}/{model.PID_FILE}"
    assert service["Service", "Type"] == "notify" and service["Service", "KillMode"] == "mixed"


def test_reload_is_a_restart_run_where_the_runtime_runs():
    service = unit("l4plan-runtime.service")
    assert l4plan_arguments(service["Service", "ExecReload"]) == ["runtime", "restart"]
    socket_unit = unit("l4plan-runtime.socket")
    admin = model.DEFAULT_PROVIDER.attributes["admin"].removeprefix("unix:")
    assert socket_unit["Socket", "ListenStream"] == f"{service['Service', 'WorkingDirectory']}/{admin}"
