"""Diff: desired resources against current ones, giving a Plan.

Pure functions over ``{address: attributes}`` dicts (``Config.resources()``
on one side, state or a provider's ``read()`` on the other). Rules inside an
application are matched by ``protocol/edge_port``, so reordering them is no
change. Port mappings of added and changed rules, and the paths at which
other attributes differ, are worked out here, so the renderers need nothing
but the plan.
"""

from dataclasses import replace

from l4plan.attribute_paths import changed_paths
from l4plan.model import rule_key
from l4plan.plan import OUTCOME_UNKNOWN_REASON, Action, AttributeChange, Change, Plan, RuleChange, kind_of
from l4plan.ports import PortError, mapping_of, parse_origin_port, parse_port_spec

# Attributes that cannot be changed in place, by address type: changing one
# replaces the object (ESA cannot modify an application's domain).
FORCES_REPLACEMENT = {"application": frozenset({"domain"})}

REASONS = {
    Action.CREATE: "it is in the configuration but not in the state",
    Action.DELETE: "it is in the state but no longer in the configuration",
    Action.REPLACE: "{paths} cannot be changed in place",
}
DESTROY_REASONS = {**REASONS, Action.DELETE: "destroy was requested"}
# A drift change's reason is what the plan says of it.
DRIFT_REASONS = {
    Action.CREATE: "has been created outside of l4plan",
    Action.UPDATE: "has changed outside of l4plan",
    Action.DELETE: "has been deleted outside of l4plan",
}

# What a provider's read() reports unless told otherwise.
READ_KINDS = frozenset({"application"})


def diff(desired, current, drifted=(), lineage=None, serial=0, mode="normal"):
    """The plan that makes ``current`` match ``desired``.

    ``drifted`` is what ``drift()`` found, carried for the reader; ``lineage``
    and ``serial`` name the state ``current`` came from; ``mode`` is the
    plan's (``destroy`` gives deletions their own reason).

    Raises PreventDestroyError when it would destroy or replace an
    application with ``prevent_destroy`` set in the configuration or state.
    """
    reasons = DESTROY_REASONS if mode == "destroy" else REASONS
    addresses = sorted(desired.keys() | current.keys())
    changes = tuple(
        _change(a, current.get(a), desired.get(a), reasons) for a in addresses
    )
    plan = Plan(changes, drifted, lineage, serial, mode=mode)
    plan.check_prevent_destroy()
    return plan


def drift(state_resources, refreshed_resources, kinds=READ_KINDS, pending=None):
    """Changes made outside of l4plan: state (before) against refreshed (after).

    Only addresses of ``kinds`` are compared, since the provider reads nothing
    else; attributes the provider does not report (``prevent_destroy``, a
    lifecycle setting) are not drift. A change that the target shows exactly
    as ``pending`` (an apply of unknown outcome) wanted is l4plan's own, and
    says so in its reason.
    """
    state = {a: v for a, v in state_resources.items() if kind_of(a) in kinds}
    observed = {
        a: _observed(state.get(a), attrs) for a, attrs in refreshed_resources.items()
    }
    changes = (
        _change(a, state.get(a), observed.get(a), DRIFT_REASONS, forces={})
        for a in sorted(state.keys() | observed.keys())
    )
    drifted = [c for c in changes if c.action is not Action.NO_OP]
    if pending is not None and _runs_pending(observed, pending, kinds):
        drifted = [replace(c, reason=OUTCOME_UNKNOWN_REASON) for c in drifted]
    return tuple(sorted(drifted, key=lambda c: c.sort_key))


def _runs_pending(observed, pending, kinds):
    """Whether the target runs what ``pending`` asked for (all or nothing)."""
    wanted = {a: v for a, v in pending.items() if kind_of(a) in kinds}
    return observed.keys() == wanted.keys() and all(
        all(wanted[a].get(k) == v for k, v in attributes.items())
        for a, attributes in observed.items()
    )


def refreshed_state(state_resources, refreshed_resources, kinds=READ_KINDS):
    """The state as the provider sees it: what ``diff`` compares desired with."""
    kept = {a: v for a, v in state_resources.items() if kind_of(a) not in kinds}
    read = {
        a: {**state_resources.get(a, {}), **attrs}
        for a, attrs in refreshed_resources.items()
    }
    return dict(sorted({**kept, **read}.items()))


def _observed(before, after):
    """``after`` completed with what the provider cannot see from ``before``."""
    return {**before, **after} if before else after


def _change(address, before, after, reasons, forces=FORCES_REPLACEMENT):
    if before is not None and after is not None:
        return _compared(address, before, after, reasons, forces)
    action = Action.CREATE if before is None else Action.DELETE
    rules = _rule_changes(_rules(before), _rules(after))
    return Change(
        address, action, before, after, reasons.get(action), rule_changes=rules
    )


def _rules(attributes):
    return (attributes or {}).get("rules", ())


def _compared(address, before, after, reasons, forces):
    """An update, a replace, or a no-op when only the order of rules differs."""
    if before == after:
        return Change(address, Action.NO_OP, before, after)
    attribute_changes = _attribute_changes(before, after)
    rule_changes = _rule_changes(_rules(before), _rules(after))
    if not attribute_changes and not rule_changes:
        return Change(address, Action.NO_OP, before, after)
    forcing = forces.get(kind_of(address), frozenset())
    changed = sorted({c.path[0] for c in attribute_changes})
    replace_paths = tuple((name,) for name in changed if name in forcing)
    action = Action.REPLACE if replace_paths else Action.UPDATE
    reason = reasons.get(action)
    if reason and replace_paths:
        reason = reason.format(paths=", ".join(p[0] for p in replace_paths))
    return Change(
        address, action, before, after, reason, replace_paths, attribute_changes, rule_changes
    )


def _attribute_changes(before, after):
    """Where the attributes differ, rules aside (``rule_changes`` has those, by key)."""
    paths = changed_paths(_without_rules(before), _without_rules(after))
    return tuple(AttributeChange(*change) for change in paths)


def _without_rules(attributes):
    return {k: v for k, v in attributes.items() if k != "rules"}


def _changed_keys(before, after):
    keys = before.keys() | after.keys()
    return tuple(sorted(k for k in keys if before.get(k) != after.get(k)))


def _by_key(rules):
    return {rule_key(r["protocol"], r["edge_port"]): r for r in rules}


def _rule_changes(before_rules, after_rules):
    """Added, removed and changed rules by key; unchanged ones are left out."""
    before, after = _by_key(before_rules), _by_key(after_rules)
    changes = (
        _rule_change(key, before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
    )
    return tuple(c for c in changes if c)


def _rule_change(key, before, after):
    """The RuleChange of one key, or None when the rule is the same."""
    if before is None:
        return RuleChange(key, Action.CREATE, None, after, (), mapping_text(after))
    if after is None:
        return RuleChange(key, Action.DELETE, before, None)
    if before == after:
        return None
    changed = _changed_keys(before, after)
    return RuleChange(key, Action.UPDATE, before, after, changed, mapping_text(after))


def mapping_text(rule):
    """How a rule sends edge ports to origin ports, in one readable line.

    ``tcp/7000-7010 -> 17000-17010 (by position: 7000->17000 … 7010->17010)``,
    ``udp/53 -> 5353``, ``tcp/80 -> 8000-8003 (round-robin)``,
    ``tcp/80,81 -> 9000 (all to one)``.
    """
    head = f"{rule_key(rule['protocol'], rule['edge_port'])} -> {rule['origin_port']}"
    try:
        mapping = mapping_of(rule["edge_port"], rule["origin_port"])
        edge, origin = parse_port_spec(rule["edge_port"]), parse_origin_port(rule["origin_port"])
    except PortError as error:
        return f"{head} (invalid: {error})"
    return f"{head}{_mapping_note(edge, origin, mapping)}"


def _mapping_note(edge, origin, mapping):
    if edge.is_single:
        return "" if origin.is_single else " (round-robin)"
    if origin.is_single:
        return " (all to one)"
    pairs = [f"{m.edge}->{m.origin[0]}" for m in mapping]
    shown = ", ".join(pairs) if len(pairs) == 2 else f"{pairs[0]} … {pairs[-1]}"
    return f" (by position: {shown})"
