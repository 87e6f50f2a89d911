"""Saved plans: round trip, freshness, and clear errors for bad files."""

import dataclasses
import json

import pytest
from plan_scenarios import LINEAGE, SCENARIOS, game, resources

from l4plan import __version__
from l4plan.diff import diff
from l4plan.planfile import ForeignPlan, PlanFileError, StalePlan, check_fresh, config_digest, load_plan, save_plan

DESIRED = resources(game(ipv6=False))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "l4plan.plan"
    plan = diff(DESIRED, resources(game()), lineage=LINEAGE, serial=7)
    save_plan(path, plan, DESIRED)
    return path


def test_saved_plan_loads_as_it_was_saved(saved):
    """A loaded plan file has the same plan, desired resources and digest."""
    loaded = load_plan(saved)
    assert loaded.plan == diff(DESIRED, resources(game()), lineage=LINEAGE, serial=7)
    assert loaded.desired == DESIRED
    assert loaded.config_digest == config_digest(DESIRED)
    assert loaded.l4plan_version == __version__


def test_every_scenario_round_trips(tmp_path):
    """Plans with drift, replaces and deletes survive a save and a load."""
    for name, make in SCENARIOS.items():
        plan = dataclasses.replace(make(), l4plan_version=__version__)
        save_plan(tmp_path / name, plan, {}, digest="sha256:given")
        assert load_plan(tmp_path / name).plan == plan


def test_digest_is_sha256_of_canonical_json():
    """The digest ignores key order and differs for different content."""
    reordered = {k: dict(reversed(list(v.items()))) for k, v in DESIRED.items()}
    assert config_digest(reordered) == config_digest(DESIRED)
    assert config_digest(resources(game())) != config_digest(DESIRED)
    assert (
        config_digest(DESIRED).startswith("sha256:")
        and len(config_digest(DESIRED)) == 71
    )


def test_fresh_plan_passes(saved):
    """A plan checked against the state it was made for is accepted."""
    check_fresh(load_plan(saved), LINEAGE, 7)


def test_stale_plan_is_refused(saved):
    """A plan made before the state changed is refused with both serials."""
    with pytest.raises(StalePlan) as caught:
        check_fresh(load_plan(saved), LINEAGE, 8)
    assert str(caught.value) == (
        "Saved plan is stale: the state changed since it was made "
        "(serial 7, now 8); run plan again"
    )


def test_plan_made_before_any_state_is_stale_once_state_exists(tmp_path):
    """A plan made with no state is refused after a first apply wrote one."""
    save_plan(tmp_path / "p", diff(DESIRED, {}), DESIRED)
    check_fresh(load_plan(tmp_path / "p"), None, 0)
    with pytest.raises(StalePlan, match=r"\(serial 0, now 1\)"):
        check_fresh(load_plan(tmp_path / "p"), "new-lineage", 1)


def test_plan_for_another_state_is_refused(saved):
    """A plan made against another lineage is refused, naming the lineages."""
    with pytest.raises(ForeignPlan) as caught:
        check_fresh(load_plan(saved), "other-lineage", 7)
    assert str(caught.value) == (
        f"Saved plan was made for another state (lineage {LINEAGE}, this state "
        "has lineage other-lineage); run plan again against this state"
    )


def test_plan_from_another_version_is_refused(saved):
    """A plan saved by another l4plan version is not applied."""
    old = dataclasses.replace(load_plan(saved), l4plan_version="0.0.1")
    with pytest.raises(
        ForeignPlan, match=f"made by l4plan 0.0.1, and this is l4plan {__version__}"
    ):
        check_fresh(old, LINEAGE, 7)


def test_missing_file_names_the_file(tmp_path):
    """A missing plan file is reported with its path."""
    with pytest.raises(PlanFileError) as caught:
        load_plan(tmp_path / "nope")
    assert (
        str(caught.value)
        == f"Cannot read saved plan {tmp_path / 'nope'}: No such file or directory"
    )


def test_corrupt_json_names_the_file(saved):
    """A truncated plan file is reported as not usable, with its path and the fix."""
    saved.write_text(saved.read_text()[:100])
    with pytest.raises(PlanFileError) as caught:
        load_plan(saved)
    message = str(caught.value)
    assert message.startswith(f"{saved} is not a usable saved plan: not valid JSON (")
    assert message.endswith("; make a new one with l4plan plan --out")


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda d: [], "not a JSON object"),
        (lambda d: {**d, "desired": None}, '"desired" is missing or not an object'),
        (lambda d: {**d, "format_version": "1"}, '"format_version" is missing or not a whole number'),
        (lambda d: {**d, "format_version": True}, '"format_version" is missing or not a whole number'),
        (
            lambda d: {k: v for k, v in d.items() if k != "plan"},
            '"plan" is missing or not an object',
        ),
        (
            lambda d: {**d, "plan": {**d["plan"], "serial": -1}},
            "plan at serial: -1 is less than the minimum of 0",
        ),
    ],
)
def test_malformed_plan_file_says_what_is_wrong(saved, edit, why):
    """A JSON file that is not a plan file is refused, saying where it is wrong."""
    saved.write_text(json.dumps(edit(json.loads(saved.read_text()))))
    with pytest.raises(PlanFileError) as caught:
        load_plan(saved)
    assert str(caught.value) == (
        f"{saved} is not a usable saved plan: {why}; make a new one with l4plan plan --out"
    )


def test_newer_format_is_refused(saved):
    """A plan file from a newer l4plan is refused rather than misread."""
    document = json.loads(saved.read_text())
    saved.write_text(json.dumps({**document, "format_version": 99}))
    with pytest.raises(PlanFileError, match="saved by a newer l4plan"):
        load_plan(saved)


def test_older_format_is_refused_with_the_fix(saved):
    """A plan file of format 1 (no attribute_changes) is refused, saying to plan again."""
    document = json.loads(saved.read_text())
    saved.write_text(json.dumps({**document, "format_version": 1}))
    with pytest.raises(PlanFileError) as caught:
        load_plan(saved)
    assert str(caught.value) == (
        f"{saved} was saved by an older l4plan (plan file format 1, this l4plan "
        "reads 2); make a new one with l4plan plan --out"
    )


def test_save_leaves_no_temporary_files(saved):
    """The atomic write leaves only the plan file behind."""
    assert [p.name for p in saved.parent.iterdir()] == ["l4plan.plan"]


def test_saved_plan_keeps_no_ops_whole(tmp_path):
    """The plan JSON gives a no-op as its address and action; the plan file keeps
    its before, which apply checks the target still runs."""
    plan = SCENARIOS["no_op"]()
    assert plan.to_dict()["changes"] == [{"address": "application.game", "action": "no-op"}]
    save_plan(tmp_path / "p", plan, {}, digest="sha256:given")
    (saved,) = json.loads((tmp_path / "p").read_text())["plan"]["changes"]
    assert saved["before"] == plan.changes[0].before
