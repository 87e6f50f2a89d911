"""examples/ci: the workflow calls commands and flags that exist, in the right order."""

import shlex
from pathlib import Path

import pytest

from l4plan.cli import main
from l4plan.render.markdown import MARKER

yaml = pytest.importorskip("yaml")

EXAMPLES = Path(__file__).parents[2] / "examples" / "ci"
WORKFLOWS = (EXAMPLES / "l4plan.yml", EXAMPLES / "hosted" / "l4plan.yml")


def workflow(path=WORKFLOWS[0]):
    return yaml.safe_load(path.read_text())


def invocations(job):
    """Each ``l4plan …`` command line of a job's ``run`` steps, as words."""
    for step in job["steps"]:
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            if words[:1] == ["l4plan"]:
                yield words


def subcommand(words):
    """``(command, its arguments)`` after the global ``-C DIR``."""
    assert words[1:2] == ["-C"], words
    return main.commands[words[3]], words[4:]


@pytest.mark.parametrize("path", WORKFLOWS, ids=["self-hosted", "hosted"])
def test_every_flag_exists(path):
    """Every option a workflow passes is an option of that l4plan command."""
    for job in workflow(path)["jobs"].values():
        for words in invocations(job):
            command, arguments = subcommand(words)
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            assert {a for a in arguments if a.startswith("-")} <= known, words


@pytest.mark.parametrize("path", WORKFLOWS, ids=["self-hosted", "hosted"])
def test_jobs_check_plan_then_apply_the_saved_plan(path):
    """check runs fmt --check and validate; plan saves and comments; apply uses the file."""
    jobs = workflow(path)["jobs"]
    names = {
        job: [subcommand(w)[0].name for w in invocations(jobs[job])] for job in jobs
    }
    assert names == {"check": ["fmt", "validate"], "plan": ["plan"], "apply": ["apply"]}
    plan = next(invocations(jobs["plan"]))
    assert {"--out", "--markdown", "--detailed-exitcode"} <= set(plan)
    apply_words = next(invocations(jobs["apply"]))
    assert apply_words[-1] == "$RUNNER_TEMP/l4plan.plan"
    assert "--auto-approve" not in apply_words
    assert jobs["apply"]["needs"] == "plan" and jobs["plan"]["needs"] == "check"


def test_comment_is_found_by_the_renderer_marker():
    """The comment step updates the comment carrying the Markdown renderer's marker."""
    script = next(
        s["with"]["script"]
        for s in workflow()["jobs"]["plan"]["steps"]
        if "github-script" in s.get("uses", "")
    )
    assert f'const marker = "{MARKER}";' in script
