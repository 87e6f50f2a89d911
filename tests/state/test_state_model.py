"""The state value: addresses, serial discipline, rm and mv as pure functions."""

import subprocess
import sys

import pytest

from l4plan import __version__
from l4plan.state import InvalidAddress, Resource, ResourceExists, ResourceNotFound, State, parse_address


def game(**attributes):
    return Resource.at("application.game", {"domain": "game.example.com", **attributes})


def test_empty_state_has_no_lineage_and_serial_zero():
    """The empty state is what a missing file means: no lineage yet, serial 0."""
    empty = State.empty()
    assert (empty.lineage, empty.serial, dict(empty.resources)) == (None, 0, {})
    assert (empty.format_version, empty.l4plan_version) == (1, __version__)


def test_with_resources_bumps_serial_on_change_only():
    """New content moves the serial by one; the same content returns the same state."""
    one = State.empty().with_resources([game()])
    assert one.serial == 1
    assert one.with_resources([game()]) is one
    assert one.with_resources([game(ipv6=True)]).serial == 2


def test_with_resources_refuses_duplicates():
    """Two resources at one address are a programming error."""
    with pytest.raises(ValueError, match="application.game given twice"):
        State.empty().with_resources([game(), game()])


def test_tuples_are_stored_as_json_lists():
    """Attributes are JSON copies, so a tuple is no change against a list read back."""
    with_tuple = State.empty().with_resources([game(rules=({"port": 1},))])
    assert with_tuple.with_resources([game(rules=[{"port": 1}])]) is with_tuple


def test_resource_refuses_non_json_attributes():
    """Whatever cannot be written to the file is refused when the resource is made."""
    with pytest.raises(TypeError):
        Resource.at("application.game", {"when": object()})


def test_resources_are_ordered_by_address():
    """Resources are kept sorted so the file is the same for the same content."""
    lb = Resource.at("load_balancer.pool", {})
    state = State.empty().with_resources([lb, game()])
    assert list(state.resources) == ["application.game", "load_balancer.pool"]


def test_attributes_by_address():
    """attributes() is the mapping the diff compares with the configuration."""
    state = State.empty().with_resources([game()])
    assert state.attributes() == {"application.game": {"domain": "game.example.com"}}


@pytest.mark.parametrize(
    "address, parts",
    [
        ("application.game", ("application", "game")),
        ("load_balancer.game-pool", ("load_balancer", "game-pool")),
        ("ip_access_rule.block_1", ("ip_access_rule", "block_1")),
        ("site.example.com", ("site", "example.com")),
    ],
)
def test_parse_address(address, parts):
    """TYPE.NAME splits at the first dot; site names are host names."""
    assert parse_address(address) == parts


@pytest.mark.parametrize(
    "address, message",
    [
        ("game", "expected TYPE.NAME with TYPE one of application, ip_access_rule"),
        ("server.game", "expected TYPE.NAME"),
        ("application.Game", "the name 'Game' must match ^[a-z][a-z0-9_-]{0,62}$"),
        ("application.", "the name '' must match"),
        ("site.-bad.com", "the name '-bad.com' must match a host name"),
    ],
)
def test_parse_address_refuses(address, message):
    """A bad address names itself and what was expected."""
    with pytest.raises(InvalidAddress, match=f"invalid address '{address}'") as caught:
        parse_address(address)
    assert message in str(caught.value)


def test_without_removes_and_bumps():
    """rm drops the address and moves the serial."""
    state = State.empty().with_resources([game(), Resource.at("site.example.com", {})])
    after = state.without("application.game")
    assert (list(after.resources), after.serial) == (["site.example.com"], 2)


def test_without_a_missing_address_names_it():
    """rm of an address not in the state is an error naming the address."""
    with pytest.raises(ResourceNotFound) as caught:
        State.empty().without("application.ghost")
    assert str(caught.value) == (
        'application.ghost is not in the state; "l4plan state list" shows the '
        "addresses it holds"
    )


def test_moved_renames_and_keeps_attributes_and_identity():
    """mv re-files the resource under the new name with everything else kept."""
    state = State.empty().with_resources(
        [Resource.at("application.game", {"x": 1}, {"id": "app-1"})]
    )
    after = state.moved("application.game", "application.arena")
    moved = after.resource("application.arena")
    assert (moved.name, moved.attributes, moved.identity) == (
        "arena",
        {"x": 1},
        {"id": "app-1"},
    )
    assert list(after.resources) == ["application.arena"]
    assert after.serial == state.serial + 1


def test_moved_onto_an_existing_address_is_refused():
    """mv never overwrites: the error says to remove the target first."""
    state = State.empty().with_resources([game(), Resource.at("application.arena", {})])
    with pytest.raises(ResourceExists) as caught:
        state.moved("application.game", "application.arena")
    assert str(caught.value) == (
        "cannot move application.game to application.arena: application.arena is "
        'already in the state; remove it first with "l4plan state rm application.arena"'
    )


def test_moved_across_types_is_refused():
    """An application cannot become a load balancer by renaming."""
    state = State.empty().with_resources([game()])
    with pytest.raises(
        InvalidAddress,
        match="a resource keeps its type, so TO must be application.NAME",
    ):
        state.moved("application.game", "load_balancer.game")


def test_moved_from_a_missing_address_names_it():
    """mv of an address not in the state is an error naming the address."""
    with pytest.raises(ResourceNotFound, match="application.ghost is not in the state"):
        State.empty().moved("application.ghost", "application.other")


def test_dict_round_trip():
    """to_dict and from_dict are inverses."""
    state = State(lineage="l", serial=3).with_resources([game()])
    assert State.from_dict(state.to_dict()) == state


def test_with_resource_adds_or_replaces_one():
    """with_resource files one resource at its address, as import and apply need."""
    state = State.empty().with_resource(game())
    assert state.with_resource(game()) is state
    updated = state.with_resource(game(ipv6=True))
    assert (
        updated.serial,
        updated.resource("application.game").attributes["ipv6"],
    ) == (
        2,
        True,
    )
    added = updated.with_resource(Resource.at("site.example.com", {}))
    assert list(added.resources) == ["application.game", "site.example.com"]


@pytest.mark.processes
def test_engine_does_not_import_the_cli():
    """l4plan.state stands alone: importing it loads no CLI module."""
    code = "import sys, l4plan.state; print(sorted(m for m in sys.modules if m.startswith('l4plan.cli')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
