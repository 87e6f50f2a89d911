"""The diff: actions per address, rules by protocol/edge_port, drift, the plan value."""

import io

import pytest
from plan_scenarios import SCANNERS, SITE, chat, dns, game, resources, rule

from l4plan.diff import diff, drift, mapping_text, refreshed_state
from l4plan.plan import Action, Plan
from l4plan.render.text import TextRenderer


def _only(plan):
    (change,) = [c for c in plan.changes if c.action is not Action.NO_OP]
    return change


def test_reordering_rules_is_no_change():
    """Rules are matched by protocol/edge_port, so a new order alone changes nothing."""
    reordered = game(rules=tuple(reversed(game().rules)))
    plan = diff(resources(reordered), resources(game()))
    assert [c.action for c in plan.changes] == [Action.NO_OP]
    assert not plan.has_changes


def test_identical_resources_are_no_op_changes():
    """Every address appears in the plan, unchanged ones as no-op."""
    plan = diff(resources(SITE, game()), resources(SITE, game()))
    assert [(c.address, c.action) for c in plan.changes] == [
        ("application.game", Action.NO_OP),
        ("site.example.com", Action.NO_OP),
    ]
    assert plan.summary == {"add": 0, "change": 0, "destroy": 0}


def test_domain_change_is_a_replace():
    """Changing an application's domain replaces it, naming domain as the cause."""
    change = _only(diff(resources(game(domain="play.example.com")), resources(game())))
    assert change.action is Action.REPLACE
    assert change.replace_paths == (("domain",),)
    assert change.reason == "domain cannot be changed in place"


def test_forces_replacement_is_shown_on_the_domain_line():
    """The text plan marks the domain line, and only it, with # forces replacement."""
    desired = resources(game(domain="play.example.com", ipv6=False))
    stream = io.StringIO()
    TextRenderer().render(diff(desired, resources(game())), stream)
    lines = stream.getvalue().splitlines()
    assert (
        '      ~ domain = "game.example.com" -> "play.example.com" # forces replacement'
        in lines
    )
    assert "      ~ ipv6   = true -> false" in lines
    assert "-/+ destroy and then create replacement" in lines


def test_other_attribute_change_is_an_update():
    """A change to anything but the domain is made in place."""
    change = _only(diff(resources(game(ipv6=False)), resources(game())))
    assert (change.action, change.changed_attributes, change.replace_paths) == (
        Action.UPDATE,
        ("ipv6",),
        (),
    )


def test_rule_changes_by_key_with_mappings():
    """Added, removed and changed rules are listed by key, with the new mapping."""
    rules = (
        rule("tcp", "7000-7010", "27000-27010", comment="match servers"),
        rule("udp", "7000", "7000", client_ip_passthrough="proxy_protocol_v2"),
        rule("tcp", "80,81", "9000"),
    )
    change = _only(diff(resources(game(rules=rules)), resources(game())))
    assert [
        (r.key, r.action, r.changed_attributes, r.mapping) for r in change.rule_changes
    ] == [
        (
            "tcp/7000-7010",
            Action.UPDATE,
            ("origin_port",),
            "tcp/7000-7010 -> 27000-27010 (by position: 7000->27000 … 7010->27010)",
        ),
        ("tcp/80", Action.DELETE, (), None),
        ("tcp/80,81", Action.CREATE, (), "tcp/80,81 -> 9000 (all to one)"),
    ]


def test_created_application_lists_every_rule_as_added():
    """A create carries each of its rules as an added rule with its mapping."""
    change = _only(diff(resources(dns()), {}))
    assert change.action is Action.CREATE and change.before is None
    assert [(r.key, r.action, r.mapping) for r in change.rule_changes] == [
        ("udp/53", Action.CREATE, "udp/53 -> 5353")
    ]


def test_deleted_application_lists_every_rule_as_removed():
    """A delete carries each of its rules as a removed rule."""
    change = _only(diff({}, resources(dns())))
    assert change.action is Action.DELETE and change.after is None
    assert change.reason == "it is in the state but no longer in the configuration"
    assert [(r.key, r.action) for r in change.rule_changes] == [
        ("udp/53", Action.DELETE)
    ]


@pytest.mark.parametrize(
    "edge, origin, expected",
    [
        (
            "7000-7010",
            "17000-17010",
            "tcp/7000-7010 -> 17000-17010 (by position: 7000->17000 … 7010->17010)",
        ),
        (
            "80,81",
            "9000-9001",
            "tcp/80,81 -> 9000-9001 (by position: 80->9000, 81->9001)",
        ),
        ("53", "5353", "tcp/53 -> 5353"),
        ("80", "8000-8003", "tcp/80 -> 8000-8003 (round-robin)"),
        ("80,81", "9000", "tcp/80,81 -> 9000 (all to one)"),
        (
            "80,81",
            "9000-9002",
            "tcp/80,81 -> 9000-9002 (invalid: edge port has 2 ports but origin port has 3; a list or range of edge ports maps to one origin port or to a range of exactly 2 ports)",
        ),
    ],
)
def test_mapping_text(edge, origin, expected):
    """Each kind of port mapping reads as one line; a bad one says why."""
    text = {"protocol": "tcp", "edge_port": edge, "origin_port": origin}
    assert mapping_text(text) == expected


def test_changes_are_ordered_by_action_then_address():
    """Creates, updates, deletes, replaces, no-ops; by address within each."""
    state = resources(SITE, game(), chat(), dns())
    desired = resources(SITE, SCANNERS, game(ipv6=False), dns(domain="ns.example.com"))
    plan = diff(desired, state)
    assert [(c.action.word, c.address) for c in plan.changes] == [
        ("create", "ip_access_rule.block-scanners"),
        ("update", "application.game"),
        ("delete", "application.chat"),
        ("replace", "application.dns"),
        ("no-op", "site.example.com"),
    ]
    assert plan.summary == {"add": 2, "change": 1, "destroy": 2}


def test_plan_sorts_changes_it_is_given():
    """A Plan orders its changes itself, whatever order they come in."""
    plan = diff(resources(SCANNERS, game(ipv6=False)), resources(game()))
    shuffled = Plan(changes=tuple(reversed(plan.changes)))
    assert shuffled.changes == plan.changes


def test_plan_round_trips_through_its_dict():
    """Plan.from_dict(plan.to_dict()) is the same plan."""
    state = resources(game(), chat())
    read = resources(game(ipv6=False))
    plan = diff(
        resources(game(domain="play.example.com")),
        refreshed_state(state, read),
        drift(state, read),
        lineage="abc",
        serial=4,
    )
    assert Plan.from_dict(plan.to_dict()) == plan


def test_drift_reports_changed_deleted_and_created_outside():
    """Refresh differences are drift: changed, deleted and created outside of l4plan."""
    state = resources(game(), chat())
    read = resources(game(ipv6=False), dns())
    assert [(c.address, c.action, c.reason) for c in drift(state, read)] == [
        ("application.dns", Action.CREATE, "has been created outside of l4plan"),
        ("application.game", Action.UPDATE, "has changed outside of l4plan"),
        ("application.chat", Action.DELETE, "has been deleted outside of l4plan"),
    ]


def test_drift_ignores_attributes_and_types_the_provider_does_not_read():
    """A lifecycle attribute the runtime does not report, or the site, is not drift."""
    state = resources(SITE, game(prevent_destroy=True))
    read = resources(game())
    del read["application.game"]["prevent_destroy"]
    assert drift(state, read) == ()


def test_drift_of_a_domain_is_an_update_not_a_replace():
    """Drift says what changed outside; it never plans a replacement."""
    (change,) = drift(resources(game()), resources(game(domain="other.example.com")))
    assert (change.action, change.replace_paths) == (Action.UPDATE, ())


def test_refreshed_state_takes_what_the_provider_read():
    """The refreshed state has the provider's view of applications, the rest from state."""
    state = resources(SITE, game(prevent_destroy=True), chat())
    read = resources(game(ipv6=False))
    del read["application.game"]["prevent_destroy"]
    current = refreshed_state(state, read)
    assert sorted(current) == ["application.game", "site.example.com"]
    assert current["application.game"] == {
        **game(ipv6=False, prevent_destroy=True).to_dict()
    }
