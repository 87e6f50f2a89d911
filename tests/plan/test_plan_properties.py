"""Properties of the diff over generated applications."""

from hypothesis import given
from hypothesis import strategies as st
from plan_scenarios import game, resources, rule

from l4plan.diff import diff
from l4plan.plan import Action

RULES = [rule("tcp", str(port), str(port + 1000)) for port in range(80, 86)]
RULES += [rule("udp", str(port), "5353") for port in (53, 54)]

applications = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.tuples(
        st.sampled_from(["x.example.com", "y.example.com"]),
        st.lists(st.sampled_from(RULES), min_size=1, max_size=4, unique=True),
        st.booleans(),
    ),
)


def _resources(apps):
    return resources(
        *(
            game(name=n, domain=d, rules=tuple(r), ipv6=v)
            for n, (d, r, v) in apps.items()
        )
    )


@given(applications, applications)
def test_plan_after_is_the_desired_resources(desired, current):
    """Every change's after, no-ops included, is exactly the desired resources."""
    plan = diff(_resources(desired), _resources(current))
    after = {c.address: c.after for c in plan.changes if c.after is not None}
    assert after == _resources(desired)


@given(applications, st.randoms())
def test_rule_order_never_matters(apps, random):
    """Shuffling every application's rules gives a plan without changes."""
    shuffled = {n: (d, random.sample(r, len(r)), v) for n, (d, r, v) in apps.items()}
    assert not diff(_resources(shuffled), _resources(apps)).has_changes


@given(applications, applications)
def test_replace_exactly_when_the_domain_changes(desired, current):
    """An application present on both sides is replaced if and only if its domain moved."""
    plan = diff(_resources(desired), _resources(current))
    for change in plan.changes:
        if change.before and change.after:
            moved = change.before["domain"] != change.after["domain"]
            assert (change.action is Action.REPLACE) == moved
    assert plan.has_changes == any(plan.summary.values())
