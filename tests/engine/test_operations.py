"""The steps of l4plan.apply, each on its own, with an in-memory provider."""

import errno
import os

import pytest
from engine_helpers import SITE, application

from l4plan import apply as engine
from l4plan.config.variables import VariableInputs
from l4plan.plan import Action, PlanError, TooMuchChange
from l4plan.planfile import ForeignPlan, PlanFileError, StalePlan, load_plan, save_plan
from l4plan.providers.base import OutcomeUnknown, Provider, ProviderError
from l4plan.state import LocalBackend, Resource, State, StateError
from l4plan.validate import load_config
from tests.state_files import read_state, write_state


class MemoryProvider(Provider):
    """Runs what it was last given; counts applies; fails when told to (and
    with ``unknown``, applies and then gives no answer)."""

    def __init__(self, running=None, failure=None, unknown=False):
        super().__init__("memory", {}, ".")
        self.running = dict(running or {})
        self.failure = failure
        self.unknown = unknown
        self.applied = 0

    def _read(self):
        return dict(self.running)

    def _apply(self, plan, desired):
        if self.failure:
            raise ProviderError(self.failure)
        self.applied += 1
        self.running = {
            a: v for a, v in desired.items() if a.startswith("application.")
        }
        if self.unknown:
            raise OutcomeUnknown("the runtime took the change but gave no answer")
        return {a: {"id": a, "n": self.applied} for a in self.running}


def workspace(tmp_path, *apps, provider=None):
    (tmp_path / "site.l4.hcl").write_text(SITE)
    (tmp_path / "apps.l4.hcl").write_text("\n".join(apps))
    config = load_config(tmp_path, VariableInputs())
    return engine.Workspace(
        config,
        provider or MemoryProvider(),
        LocalBackend.at(tmp_path / "l4plan.state.json"),
    )


def applied(ws, options=engine.PlanOptions()):
    """Apply ``ws`` with approval; returns the state written."""
    return engine.apply(ws, options, lambda proposal: True).state


def attrs(name, **changes):
    return {
        "name": name,
        "domain": f"{name}.example.com",
        "rules": [],
        "prevent_destroy": False,
        **changes,
    }


# --- pure steps --------------------------------------------------------------


def test_targeted_keeps_current_outside_the_targets():
    """Addresses not targeted keep their current value; absent ones stay absent."""
    desired = {"application.a": attrs("a", ipv6=True), "application.b": attrs("b")}
    current = {"application.a": attrs("a"), "application.c": attrs("c")}
    assert engine.targeted(desired, current, ("application.a",)) == {
        "application.a": attrs("a", ipv6=True),
        "application.c": attrs("c"),
    }
    assert engine.targeted(desired, current, ()) is desired


def test_targeted_application_brings_its_load_balancer():
    """A targeted application's rules pull in the load balancer they point at."""
    rule = {"origin_type": "load_balancer", "origin": "pool"}
    desired = {
        "application.a": attrs("a", rules=[rule]),
        "load_balancer.pool": {"name": "pool"},
        "load_balancer.other": {"name": "other"},
    }
    assert sorted(engine.targeted(desired, {}, ("application.a",))) == [
        "application.a",
        "load_balancer.pool",
    ]


def test_targeted_application_with_waf_brings_the_site_and_its_access_rules():
    """With WAF IP access control on, a targeted application brings every access rule, removed ones too."""
    desired = {
        "application.a": attrs("a", waf_ip_access_control=True),
        "application.b": attrs("b", ipv6=True),
        "ip_access_rule.deny": {"name": "deny", "action": "deny"},
        "site.example.com": {"name": "example.com"},
    }
    current = {"application.b": attrs("b"), "ip_access_rule.old": {"name": "old"}}
    assert sorted(engine.targeted(desired, current, ("application.a",))) == [
        "application.a",
        "application.b",
        "ip_access_rule.deny",
        "site.example.com",
    ]
    assert engine.targeted(desired, current, ("application.a",))["application.b"] == attrs("b")


def test_targeted_application_without_waf_leaves_access_rules_alone():
    """Without WAF IP access control an application needs the site but no access rule."""
    desired = {
        "application.a": attrs("a"),
        "ip_access_rule.deny": {"name": "deny"},
        "site.example.com": {"name": "example.com"},
    }
    assert sorted(engine.targeted(desired, {}, ("application.a",))) == [
        "application.a",
        "site.example.com",
    ]


def test_destroying_a_load_balancer_brings_the_applications_that_use_it():
    """destroy --target of a load balancer in use destroys its applications too."""
    rule = {"origin_type": "load_balancer", "origin": "pool"}
    current = {
        "application.a": attrs("a", rules=[rule]),
        "application.b": attrs("b"),
        "load_balancer.pool": {"name": "pool"},
    }
    assert engine.targeted({}, current, ("load_balancer.pool",)) == {
        "application.b": attrs("b")
    }


def test_removing_a_load_balancer_still_in_use_is_refused_at_plan_time():
    """A target that would leave a kept application without its load balancer is refused."""
    rule = {"origin_type": "load_balancer", "origin": "pool"}
    current = {
        "application.a": attrs("a", rules=[rule]),
        "load_balancer.pool": {"name": "pool"},
    }
    desired = {"application.a": attrs("a")}
    with pytest.raises(engine.EngineError) as caught:
        engine.targeted(desired, current, ("load_balancer.pool",))
    assert str(caught.value) == (
        "--target would remove load_balancer.pool, but application.a still uses "
        "it; target application.a too, or change its rules first"
    )


def test_target_that_matches_nothing_is_an_error():
    """A target in neither the configuration nor the state is refused by name."""
    with pytest.raises(engine.EngineError) as caught:
        engine.targeted({"application.a": {}}, {}, ("application.nope",))
    assert str(caught.value) == (
        "--target application.nope matches nothing in the configuration or the "
        'state; "l4plan state list" shows the addresses in the state'
    )


def test_recorded_state_takes_new_identities_and_keeps_old_ones():
    """Identity comes from the provider when it gives one, else from the state."""
    state = State(
        "lineage",
        3,
        {"site.example.com": Resource.at("site.example.com", {"x": 1}, {"id": "s"})},
    )
    desired = {"site.example.com": {"x": 1}, "application.a": attrs("a")}
    new = engine.recorded_state(state, desired, {"application.a": {"id": "a"}})
    assert new.serial == 4
    assert {a: r.identity for a, r in new.resources.items()} == {
        "application.a": {"id": "a"},
        "site.example.com": {"id": "s"},
    }


def test_refresh_off_reads_nothing():
    """--no-refresh compares with the state as it is and reports no drift."""

    class Unreadable(MemoryProvider):
        def _read(self):
            raise AssertionError("read() was called")

    provider = Unreadable()
    state = holding({"application.a": attrs("a")})
    assert engine.refresh(provider, state, enabled=False) == (state.attributes(), ())


def test_refresh_reports_drift_and_the_refreshed_state():
    """Refresh gives the state as the provider runs it, and the difference."""
    provider = MemoryProvider({"application.a": attrs("a", ipv6=True)})
    current, drifted = engine.refresh(provider, holding({"application.a": attrs("a")}))
    assert current == {"application.a": attrs("a", ipv6=True)}
    assert [(c.address, c.action) for c in drifted] == [
        ("application.a", Action.UPDATE)
    ]


def holding(resources):
    return State.empty().with_resources(Resource.at(a, v) for a, v in resources.items())


def test_refresh_leaves_out_what_state_rm_let_go():
    """An object removed with state rm keeps running but is neither drift nor current."""
    provider = MemoryProvider({"application.a": attrs("a"), "application.b": attrs("b")})
    state = holding({"application.a": attrs("a"), "application.b": attrs("b")})
    current, drifted = engine.refresh(provider, state.without("application.b"))
    assert (current, drifted) == ({"application.a": attrs("a")}, ())


def test_refresh_files_a_moved_object_under_its_new_address():
    """After state mv a b, the runtime's "a" is read as application.b: no create, no delete."""
    provider = MemoryProvider({"application.a": attrs("a")})
    state = holding({"application.a": attrs("a")}).moved("application.a", "application.b")
    current, drifted = engine.refresh(provider, state)
    assert (current, drifted) == ({"application.b": attrs("a")}, ())


def test_backend_in_reads_only_the_backend_block(tmp_path):
    """show finds the backend without resolving variables; default without config."""
    assert engine.backend_in(tmp_path).path == tmp_path / "l4plan.state.json"
    (tmp_path / "main.l4.hcl").write_text(
        'backend "local" { path = "s/x.json" }\napplication "a" { domain = var.unset }\n'
    )
    assert engine.backend_in(tmp_path).path == tmp_path / "s/x.json"


# --- planning and applying ---------------------------------------------------


def test_prevent_destroy_error_names_the_file_and_line(tmp_path):
    """Replacing a protected application is a plan error that says where it is declared."""
    ws = workspace(tmp_path, application("game", protect=True))
    applied(ws)
    ws = workspace(
        tmp_path,
        application("game", domain="play.example.com", protect=True),
        provider=ws.provider,
    )
    with pytest.raises(PlanError) as caught:
        engine.plan(ws, engine.PlanOptions())
    assert str(caught.value).endswith(
        f"\n  application.game: declared at {tmp_path}/apps.l4.hcl:1"
    )
    assert (
        "application.game has lifecycle.prevent_destroy set, but this plan would replace it."
        in str(caught.value)
    )


def test_prevent_destroy_remembered_by_the_state(tmp_path):
    """Removing a protected block is refused too, saying the state remembers it."""
    ws = workspace(
        tmp_path, application("game", protect=True), application("chat", "8000")
    )
    applied(ws)
    with pytest.raises(PlanError) as caught:
        engine.plan(
            workspace(tmp_path, application("chat", "8000"), provider=ws.provider),
            engine.PlanOptions(),
        )
    assert str(caught.value).endswith(
        "\n  application.game: no longer in the configuration (the state remembers it)"
    )


def test_too_much_destruction_needs_force(tmp_path):
    """Destroying 4 of 10 applications is refused unless forced."""
    apps = [application(f"app{i}", str(7000 + i)) for i in range(10)]
    ws = workspace(tmp_path, *apps)
    applied(ws)
    fewer = workspace(tmp_path, *apps[4:], provider=ws.provider)
    with pytest.raises(TooMuchChange, match="4 of 10, more than 33%; --force required"):
        engine.plan(fewer, engine.PlanOptions())
    assert (
        engine.plan(fewer, engine.PlanOptions(force=True)).plan.summary["destroy"] == 4
    )


def test_not_approved_changes_nothing(tmp_path):
    """A review that says no cancels before the provider is called."""
    ws = workspace(tmp_path, application("game"))
    with pytest.raises(
        engine.ApplyCancelled, match="^Apply cancelled; nothing was changed.$"
    ):
        engine.apply(ws, engine.PlanOptions(), lambda proposal: False)
    assert ws.provider.applied == 0 and not ws.backend.path.exists()


def test_failed_provider_apply_leaves_the_state(tmp_path):
    """A ProviderError becomes ApplyFailed naming the provider; the state file is untouched."""
    ws = workspace(tmp_path, application("game"))
    applied(ws)
    before = ws.backend.path.read_bytes()
    ws.provider.failure = "port tcp/8000 is in use"
    changed = workspace(tmp_path, application("game", "8000"), provider=ws.provider)
    with pytest.raises(engine.ApplyFailed) as caught:
        applied(changed)
    assert str(caught.value) == (
        'Apply failed: provider "memory": port tcp/8000 is in use. The state is unchanged.'
    )
    assert ws.backend.path.read_bytes() == before


def test_apply_records_identities_and_no_changes_writes_nothing(tmp_path):
    """Apply writes the state with the provider's identities; a second apply writes nothing."""
    ws = workspace(tmp_path, application("game"))
    outcome = engine.apply(ws, engine.PlanOptions(), lambda proposal: True)
    assert outcome.applied and outcome.state.serial == 1
    assert outcome.state.resources["application.game"].identity == {
        "id": "application.game",
        "n": 1,
    }
    again = engine.apply(ws, engine.PlanOptions(), lambda proposal: True)
    assert not again.applied and not again.proposal.pending
    assert ws.provider.applied == 1 and read_state(ws.backend.path).serial == 1


def test_refresh_only_records_drift_without_calling_the_provider(tmp_path):
    """A refresh-only apply writes what the provider runs into the state, and applies nothing."""
    ws = workspace(tmp_path, application("game"))
    applied(ws)
    ws.provider.running["application.game"]["ipv6"] = True
    outcome = engine.apply(
        ws, engine.PlanOptions(refresh_only=True), lambda proposal: True
    )
    assert outcome.proposal.pending and not outcome.proposal.plan.has_changes
    assert outcome.state.resources["application.game"].attributes["ipv6"] is True
    assert ws.provider.applied == 1


def test_destroy_empties_state_and_provider(tmp_path):
    """destroy hands the provider nothing to run and leaves an empty state."""
    ws = workspace(tmp_path, application("game"))
    applied(ws)
    state = applied(ws, engine.PlanOptions(destroy=True))
    assert dict(state.resources) == {} and ws.provider.running == {}


# --- saved plans -------------------------------------------------------------


def saved_plan(ws, path):
    proposal = engine.plan(ws, engine.PlanOptions())
    save_plan(path, proposal.plan, proposal.desired)
    return load_plan(path)


def test_saved_plan_applies_while_fresh_and_is_stale_after(tmp_path):
    """A saved plan applies once; applied again, the state has moved on."""
    ws = workspace(tmp_path, application("game"))
    saved = saved_plan(ws, tmp_path / "p")
    assert engine.apply_saved(ws, saved).state.serial == 1
    with pytest.raises(
        StalePlan, match=r"^Saved plan is stale: .*\(serial 0, now 1\); run plan again$"
    ):
        engine.apply_saved(ws, saved)
    assert ws.provider.applied == 1


def test_plan_for_another_state_is_refused(tmp_path):
    """A plan made against one state's lineage is refused by another state."""
    ws = workspace(tmp_path, application("game"))
    applied(ws)
    saved = saved_plan(
        workspace(tmp_path, application("game", "8000"), provider=ws.provider),
        tmp_path / "p",
    )
    ws.backend.path.unlink()
    write_state(
        ws.backend.path, State().with_resources([Resource.at("application.x", {})])
    )
    with pytest.raises(ForeignPlan, match="^Saved plan was made for another state"):
        engine.apply_saved(ws, saved)


def test_edited_plan_file_is_refused(tmp_path):
    """Desired resources that no longer match the plan's digest are refused."""
    ws = workspace(tmp_path, application("game"))
    saved = saved_plan(ws, tmp_path / "p")
    saved.desired["application.game"]["ipv6"] = True
    with pytest.raises(
        PlanFileError, match="^Saved plan was modified after it was made"
    ):
        engine.apply_saved(ws, saved)
    assert ws.provider.applied == 0


# --- import ------------------------------------------------------------------


def test_import_adopts_what_the_provider_runs(tmp_path):
    """Import records the provider's attributes, the block's prevent_destroy and the ID."""
    running = {
        "application.game": {
            k: v for k, v in attrs("game").items() if k != "prevent_destroy"
        }
    }
    ws = workspace(
        tmp_path, application("game", protect=True), provider=MemoryProvider(running)
    )
    state = engine.import_resource(ws, "application.game", "game")
    resource = state.resources["application.game"]
    assert resource.attributes == {
        **running["application.game"],
        "prevent_destroy": True,
    }
    assert resource.identity == {"id": "game"}


def test_import_of_a_load_balancer_records_no_lifecycle(tmp_path):
    """A load balancer has no prevent_destroy: import records only what the provider read."""
    pool = 'load_balancer "pool" {\n  origin {\n    address = "192.0.2.10"\n  }\n}\n'
    running = {"load_balancer.pool": {"name": "pool", "algorithm": "round_robin"}}

    class Pools(MemoryProvider):
        READS = frozenset({"application", "load_balancer"})

    ws = workspace(tmp_path, pool, provider=Pools(running))
    state = engine.import_resource(ws, "load_balancer.pool", "pool")
    assert state.resources["load_balancer.pool"].attributes == running["load_balancer.pool"]


@pytest.mark.parametrize(
    "address, remote_id, message",
    [
        (
            "application.chat",
            "game",
            'application.chat is not in the configuration; declare application "chat" first, then import into it',
        ),
        (
            "application.game",
            "nope",
            "provider \"memory\" runs no application named 'nope' (it runs: game); check the ID",
        ),
        (
            "site.example.com",
            "x",
            'cannot import site.example.com: provider "memory" reads only application objects',
        ),
    ],
)
def test_import_refusals(tmp_path, address, remote_id, message):
    """Import refuses an undeclared address, an unknown ID and a kind the provider cannot read."""
    ws = workspace(
        tmp_path,
        application("game"),
        provider=MemoryProvider({"application.game": attrs("game")}),
    )
    with pytest.raises(engine.EngineError) as caught:
        engine.import_resource(ws, address, remote_id)
    assert str(caught.value) == message
    assert not ws.backend.path.exists()


def test_import_refuses_what_the_state_already_manages(tmp_path):
    """An address already in the state, or an ID managed elsewhere, is refused."""
    ws = workspace(tmp_path, application("game"), application("chat", "8000"))
    applied(ws)
    with pytest.raises(
        engine.EngineError, match="^application.game is already in the state"
    ):
        engine.import_resource(ws, "application.game", "game")
    with pytest.raises(
        engine.EngineError,
        match="^application game is already managed as application.game",
    ):
        engine.import_resource(
            workspace(
                tmp_path,
                application("game"),
                application("chat", "8000"),
                application("extra", "9000"),
                provider=ws.provider,
            ),
            "application.extra",
            "game",
        )


def test_state_write_failure_after_apply_says_what_to_do(tmp_path, monkeypatch):
    """When the state cannot be written after the provider applied, the error says so."""
    ws = workspace(tmp_path, application("game"))

    def unwritable(path, data, keep_backup=False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("l4plan.state.local.write_atomically", unwritable)
    with pytest.raises(StateError) as caught:
        applied(ws)
    assert str(caught.value) == (
        f"cannot write {ws.backend.path}: No space left on device; the previous "
        "state is unchanged. The provider has "
        "applied the plan: run plan again, and refresh will show what the state "
        "is missing as drift"
    )
    assert ws.provider.applied == 1


def test_an_apply_of_unknown_outcome_is_recognised_as_ours(tmp_path):
    """A provider that applies and gives no answer: apply says the outcome is unknown,
    the state keeps its resources and remembers the change; the next plan shows the
    change as l4plan's own, and applying it records it and forgets the pending change."""
    ws = workspace(tmp_path, application("game"))
    before = applied(ws)
    ws.provider.unknown = True
    changed = workspace(tmp_path, application("game", "7001"), provider=ws.provider)
    with pytest.raises(engine.ApplyOutcomeUnknown, match="^Apply outcome unknown: provider \"memory\": "):
        applied(changed)
    state = read_state(changed.backend.path)
    assert state.resources == before.resources and state.pending is not None
    ws.provider.unknown = False
    proposal = engine.plan(changed, engine.PlanOptions())
    assert [(c.address, c.reason) for c in proposal.plan.drift] == [
        ("application.game", "was changed by l4plan's last apply, whose outcome was unknown")
    ]
    assert not proposal.plan.has_changes
    recorded = applied(changed)
    assert recorded.pending is None
    assert recorded.resources["application.game"].attributes["rules"][0]["edge_port"] == "7001"
    assert ws.provider.applied == 2
