"""Safety: prevent_destroy is a plan error; mass destruction needs --force."""

import dataclasses

import pytest
from plan_scenarios import game, resources

from l4plan.diff import diff
from l4plan.plan import Plan, PreventDestroyError, TooMuchChange, UnsafePlan


def _apps(count, **changes):
    return [
        game(name=f"app{i:02}", domain=f"app{i:02}.example.com", **changes)
        for i in range(count)
    ]


def test_deleting_a_protected_application_is_an_error():
    """A delete of an application with prevent_destroy names it and the fix."""
    with pytest.raises(PreventDestroyError) as caught:
        diff({}, resources(game(prevent_destroy=True)))
    assert str(caught.value) == (
        "application.game has lifecycle.prevent_destroy set, but this plan would destroy it.\n"
        "To go ahead, set prevent_destroy = false in its lifecycle block and apply "
        "that first; to keep it, undo the change that destroys it."
    )
    assert caught.value.addresses == ("application.game",)


def test_replacing_a_protected_application_is_an_error():
    """A domain change of a protected application is refused as a replacement."""
    desired = resources(game(prevent_destroy=True, domain="play.example.com"))
    with pytest.raises(PreventDestroyError, match="would replace it"):
        diff(desired, resources(game(prevent_destroy=True)))


def test_every_protected_application_is_named_at_once():
    """All protected addresses the plan would destroy are reported together."""
    with pytest.raises(PreventDestroyError) as caught:
        diff({}, resources(*_apps(2, prevent_destroy=True)))
    assert caught.value.addresses == ("application.app00", "application.app01")


def test_updating_a_protected_application_is_allowed():
    """prevent_destroy guards destruction only; in-place updates go ahead."""
    plan = diff(
        resources(game(prevent_destroy=True, ipv6=False)),
        resources(game(prevent_destroy=True)),
    )
    assert plan.summary == {"add": 0, "change": 1, "destroy": 0}


def test_turning_protection_off_then_deleting_is_allowed():
    """With prevent_destroy false in state and config, a delete is an ordinary plan."""
    assert diff({}, resources(game())).summary["destroy"] == 1


def _plan_destroying(existing, deleted, replaced=0):
    apps = _apps(existing)
    kept = apps[deleted:]
    kept = [
        dataclasses.replace(a, domain=f"new-{a.domain}") for a in kept[:replaced]
    ] + kept[replaced:]
    return diff(resources(*kept), resources(*apps))


def test_deleting_a_third_of_ten_applications_is_safe():
    """3 of 10 is not more than a third: no --force needed."""
    _plan_destroying(10, 3).raise_if_unsafe()


def test_deleting_more_than_a_third_of_ten_applications_needs_force():
    """4 of 10 is more than a third: the message ends with --force required."""
    with pytest.raises(TooMuchChange) as caught:
        _plan_destroying(10, 4).raise_if_unsafe()
    assert isinstance(caught.value, UnsafePlan)
    assert str(caught.value) == (
        "Too many applications would be destroyed or replaced: 4 of 10, "
        "more than 33%; --force required"
    )


def test_replacements_count_as_destruction():
    """Replacing applications counts towards the threshold like deleting them."""
    with pytest.raises(TooMuchChange, match="5 of 12"):
        _plan_destroying(12, 1, replaced=4).raise_if_unsafe()


def test_fewer_than_ten_applications_are_never_too_many():
    """Below MIN_EXISTING applications, even deleting all is left to review."""
    _plan_destroying(9, 9).raise_if_unsafe()


def test_thresholds_are_class_constants():
    """The thresholds can be read (and tuned) where octodns keeps them."""
    assert (Plan.MIN_EXISTING, Plan.MAX_SAFE_DESTROY_FRACTION) == (10, 1 / 3)
