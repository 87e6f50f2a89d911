"""The operations behind plan, apply, destroy and import, in small steps.

The flow of DESIGN §1: load the configuration → lock the state → read it →
refresh through the provider's ``read()`` → drift → diff → safety gates; then,
for apply, hand the plan to the provider and write the state atomically with
the identities it returns, still under the same lock. Each step is a function
of its own so it can be tested alone; the CLI renders and asks, the engine
never prints (``approve`` is how apply asks the CLI for a yes).
"""

from dataclasses import dataclass, replace
from pathlib import Path

from l4plan.config.loader import config_files, load_directory
from l4plan.diff import diff, drift, refreshed_state
from l4plan.model import DEFAULT_BACKEND, Settings, served_key
from l4plan.plan import Action, Plan, PlanError, PreventDestroyError, kind_of
from l4plan.planfile import PlanFileError, check_fresh, config_digest
from l4plan.ports import parse_port_spec, spec_of
from l4plan.provider_registry import get_provider
from l4plan.providers.base import OutcomeUnknown, Provider, ProviderError
from l4plan.state import Resource, State, StateError, open_backend, parse_address
from l4plan.validate import load_config


class EngineError(Exception):
    """An operation refused or failed; the message says what and what to do."""


class ApplyFailed(EngineError):
    """The provider could not apply the plan; the state was left as it was."""


class ApplyOutcomeUnknown(EngineError):
    """The provider took the plan but did not say whether it applied it."""


class ApplyCancelled(EngineError):
    """The plan was not approved; nothing was changed."""


@dataclass(frozen=True)
class PlanOptions:
    """What ``plan``, ``apply`` and ``destroy`` are asked to do."""

    destroy: bool = False
    targets: tuple[str, ...] = ()
    refresh: bool = True
    refresh_only: bool = False
    force: bool = False
    lock_timeout: float = 0.0

    @property
    def mode(self):
        """The plan's mode, as Terraform names it."""
        return "destroy" if self.destroy else "refresh-only" if self.refresh_only else "normal"


@dataclass(frozen=True)
class Workspace:
    """A validated configuration with the provider and state backend it names."""

    config: object
    provider: Provider
    backend: object


@dataclass(frozen=True)
class Proposal:
    """A plan and the desired resources apply hands to the provider.

    ``desired`` is the configuration narrowed by ``--target`` (or emptied by
    ``--destroy``, or the refreshed state for ``--refresh-only``); ``canary``
    names the nodes that take it first (``apply --canary``).
    """

    plan: Plan
    desired: dict
    refresh_only: bool = False
    canary: tuple = ()

    @property
    def pending(self):
        """Whether applying would change anything the user must approve."""
        return self.plan.has_changes or (self.refresh_only and bool(self.plan.drift))

    @property
    def writes_state(self):
        """Changes, or drift the state should learn about."""
        return self.plan.has_changes or bool(self.plan.drift)


@dataclass(frozen=True)
class Outcome:
    """What apply did: the plan it carried out and the state it left."""

    proposal: Proposal
    state: State
    applied: bool


# --- workspace ---------------------------------------------------------------


def open_workspace(directory, inputs, progress=None):
    """Load the configuration in ``directory`` and find its provider and state;
    ``progress`` is where the provider's progress lines go."""
    config = load_config(directory, inputs)
    provider = provider_for(config, directory)
    if progress is not None:
        provider.progress = progress
    return Workspace(config, provider, open_backend(config.backend, directory))


def backend_in(directory):
    """The state backend of ``directory`` without resolving variables (for
    show and the state commands), as Terraform's backend blocks take no
    variables either. Only the backend block is read; no configuration
    means the default local state file.
    """
    if not config_files(directory):
        return open_backend(DEFAULT_BACKEND, directory)
    blocks = load_directory(directory).data.get("backend") or {}
    if not blocks:
        return open_backend(DEFAULT_BACKEND, directory)
    kind, attributes = next(iter(blocks.items()))
    return open_backend(Settings(kind, dict(attributes or {})), directory)


def provider_for(config, directory):
    """The configured provider; a bad provider block is reported at its line."""
    settings = config.provider
    try:
        return get_provider(settings.kind, settings.attributes, Path(directory).resolve())
    except ProviderError as error:
        where = config.location(f"provider.{settings.kind}")
        raise ProviderError(f"{where}: {error}" if where else str(error)) from None


# --- planning ----------------------------------------------------------------


def refresh(provider, state, enabled=True):
    """``(current, drift)``: the state as the provider sees it, and what moved."""
    state_resources = state.attributes()
    if not enabled:
        return state_resources, ()
    read = managed_view(provider.read(), state, provider.READS)
    return (
        refreshed_state(state_resources, read, provider.READS),
        drift(state_resources, read, provider.READS, pending=state.pending),
    )


def managed_view(read, state, kinds):
    """What the provider read, as the state manages it.

    Objects ``state rm`` let go are left out, and each object is filed under
    the address that manages it: after ``state mv application.a
    application.b``, ``application.b`` manages the runtime's ``a`` until the
    next apply renames it there.
    """
    owners = {
        r.remote_address: a for a, r in state.resources.items() if r.type in kinds
    }
    return {
        owners.get(a, a): attributes
        for a, attributes in read.items()
        if a not in state.unmanaged
    }


def check_unmanaged_not_declared(desired, state):
    """A declared object that ``state rm`` let go must be imported, not created
    over the one that runs."""
    for address in sorted(desired.keys() & set(state.unmanaged)):
        if address not in state.resources:
            raise EngineError(
                f"{address} is declared, but it was removed from the state with "
                f'"l4plan state rm" and still runs unmanaged; adopt it with '
                f'"l4plan import {address} {address.partition(".")[2]}", or remove '
                f"or rename its block"
            )


def desired_resources(config, options, current):
    """What the run aims for, before ``--target`` narrows it."""
    if options.refresh_only:
        return current
    return {} if options.destroy else config.resources()


def targeted(desired, current, targets):
    """``desired`` for the targets and what they need, ``current`` elsewhere.

    Addresses outside the targets keep what they have, so apply leaves them
    alone. A targeted application brings the site, its load balancers and,
    with WAF IP access control on, the site's access rules; a load balancer
    that goes brings the applications that go with it (``destroy --target``).
    A result in which a kept application uses a removed load balancer is
    refused here, at plan time. No targets means everything.
    """
    if not targets:
        return desired
    check_targets(targets, desired, current)
    chosen = _with_needs(set(targets), desired, current)
    picked = {a: desired[a] for a in chosen if a in desired}
    kept = {a: v for a, v in current.items() if a not in chosen}
    result = dict(sorted({**kept, **picked}.items()))
    _check_load_balancers_kept(result)
    return result


def check_targets(targets, desired, current):
    for address in targets:
        parse_address(address)
        if address not in desired and address not in current:
            raise EngineError(
                f"--target {address} matches nothing in the configuration or the "
                f'state; "l4plan state list" shows the addresses in the state'
            )


def _with_needs(chosen, desired, current):
    """``chosen`` grown until everything it needs is in it."""
    while True:
        more = set().union(*(_needs(a, desired, current) for a in chosen)) - chosen
        if not more:
            return chosen
        chosen |= more


def _needs(address, desired, current):
    if address not in desired:
        return {
            a
            for a, attributes in current.items()
            if a not in desired and address in _load_balancers_of(attributes)
        }
    attributes = desired[address]
    if kind_of(address) != "application":
        return set()
    shared = ("site", "ip_access_rule") if attributes.get("waf_ip_access_control") else ("site",)
    everywhere = desired.keys() | current.keys()
    return _load_balancers_of(attributes) | {a for a in everywhere if kind_of(a) in shared}


def _load_balancers_of(attributes):
    return {
        f"load_balancer.{rule['origin']}"
        for rule in attributes.get("rules", ())
        if rule["origin_type"] == "load_balancer"
    }


def _check_load_balancers_kept(resources):
    for address, attributes in resources.items():
        for missing in sorted(_load_balancers_of(attributes) - resources.keys()):
            raise EngineError(
                f"--target would remove {missing}, but {address} still uses it; "
                f"target {address} too, or change its rules first"
            )


def make_plan(workspace, state, options):
    """The Proposal for ``state``: refresh, drift, diff and the safety gates."""
    current, drifted = refresh(workspace.provider, state, options.refresh)
    wanted = desired_resources(workspace.config, options, current)
    desired = targeted(wanted, current, options.targets)
    check_unmanaged_not_declared(desired, state)
    try:
        plan = diff(desired, current, drifted, state.lineage, state.serial, options.mode)
    except PreventDestroyError as error:
        raise located(error, workspace.config) from None
    plan = replace(plan, unmanaged=state.unmanaged)
    if not options.force:
        plan.raise_if_unsafe()
    if options.refresh:
        plan = with_open_connections(plan, workspace.provider.open_connections())
    return Proposal(plan, desired, options.refresh_only)


def with_open_connections(plan, counts):
    """``plan`` with the live impact: connections open on each changed or removed rule.

    ``counts`` is the provider's ``{"APP/PROTOCOL/EDGE_PORT": n}``, APP as the
    target runs it (the "before" name, until a ``state mv`` is applied); a
    rule it does not name has none open. A removed rule also learns which of
    its edge ports another rule still serves after the plan: the runtime keeps
    those listeners, and the connections on them stay open.
    """
    if not counts:
        return plan
    removing = any(r.action is Action.DELETE for c in plan.changes for r in c.rule_changes)
    served = _served_after(plan) if removing else {}  # every rule's ports: only when needed

    def counted(change):
        name = (change.before or {}).get("name") or change.address.partition(".")[2]
        rules = tuple(
            rule
            if rule.action is Action.CREATE
            else replace(
                rule,
                open_connections=counts.get(served_key(name, rule.key), 0),
                kept_ports=_kept_ports(rule, served) if rule.action is Action.DELETE else None,
            )
            for rule in change.rule_changes
        )
        return replace(change, rule_changes=rules)

    changes = tuple(counted(c) if c.kind == "application" else c for c in plan.changes)
    return replace(plan, changes=changes)


def _served_after(plan):
    """``{protocol: set of edge ports}`` every application serves after the plan."""
    served: dict = {}
    for change in plan.changes:
        if change.kind == "application" and change.after:
            for rule in change.after["rules"]:
                served.setdefault(rule["protocol"], set()).update(parse_port_spec(rule["edge_port"]).ports())
    return served


def _kept_ports(rule, served):
    """The edge ports of a removed rule still served after the plan, as a port
    list (the rule's own text when all are), or None when none is."""
    ports = parse_port_spec(rule.before["edge_port"]).ports()
    kept = [p for p in ports if p in served.get(rule.before["protocol"], ())]
    if not kept:
        return None
    return rule.before["edge_port"] if len(kept) == len(ports) else str(spec_of(kept))


def located(error, config):
    """A PreventDestroyError that also says where each protected block is."""
    places = [
        (
            f"  {address}: declared at {config.location(address)}"
            if config.location(address)
            else f"  {address}: no longer in the configuration (the state remembers it)"
        )
        for address in error.addresses
    ]
    return PlanError("\n".join([str(error), *places]))


def plan(workspace, options):
    """Plan under the state lock, as Terraform does, and change nothing."""
    with workspace.backend.lock("plan", options.lock_timeout):
        return make_plan(workspace, workspace.backend.read().state, options)


# --- applying ----------------------------------------------------------------


def recorded_state(state, desired, identities):
    """``state`` holding ``desired``, each with its identity (new, else kept)."""
    kept = {a: r.identity for a, r in state.resources.items()}
    return state.with_resources(
        Resource.at(address, attributes, identities.get(address, kept.get(address)))
        for address, attributes in desired.items()
    ).settled()


def carry_out(workspace, stored, proposal):
    """Have the provider apply the proposal, then record it; returns the new state.

    The provider is called only when something changes; drift alone just
    updates the state. A ProviderError leaves the state untouched.
    """
    backend = workspace.backend
    if not proposal.plan.has_changes:
        recorded = recorded_state(stored.state, proposal.desired, {})
        return backend.write(stored, recorded).state
    identities = _provider_apply(workspace, stored, proposal)
    new_state = recorded_state(stored.state, proposal.desired, identities)
    try:
        return backend.write(stored, new_state).state
    except StateError as error:
        raise StateError(
            f"{error}. The provider has applied the plan: run plan again, and "
            f"refresh will show what the state is missing as drift"
        ) from error


def _provider_apply(workspace, stored, proposal):
    provider = workspace.provider
    try:
        return provider.apply(proposal.plan, proposal.desired, proposal.canary)
    except OutcomeUnknown as error:
        workspace.backend.write(stored, stored.state.with_pending(proposal.desired))
        raise ApplyOutcomeUnknown(
            f'Apply outcome unknown: provider "{provider.name}": {error}. The state '
            f"still holds what was there before, and remembers this change: run "
            f"plan, which shows what the target runs now, and this change as "
            f"l4plan's own if it was made."
        ) from error
    except ProviderError as error:
        raise ApplyFailed(
            f'Apply failed: provider "{provider.name}": {error}. '
            f"The state is unchanged."
        ) from error


def apply(workspace, options, review, canary=()):
    """Plan, let ``review`` see it, apply: all under one hold of the lock.

    ``review(proposal)`` is shown every proposal before anything changes and
    returns whether to go ahead; it is where the CLI prints and asks.
    """
    operation = "destroy" if options.destroy else "apply"
    with workspace.backend.lock(operation, options.lock_timeout):
        stored = workspace.backend.read()
        proposal = replace(make_plan(workspace, stored.state, options), canary=tuple(canary))
        if not review(proposal):
            raise ApplyCancelled("Apply cancelled; nothing was changed.")
        return _finish(workspace, stored, proposal)


def apply_saved(workspace, saved, lock_timeout=0.0, canary=()):
    """Apply a saved plan, only while the state is the one it was made against."""
    check_digest(saved)
    with workspace.backend.lock("apply", lock_timeout):
        stored = workspace.backend.read()
        check_fresh(saved, stored.state.lineage, stored.state.serial)
        return _finish(workspace, stored, Proposal(saved.plan, saved.desired, canary=tuple(canary)))


def check_digest(saved):
    """Refuse a plan file whose desired resources were edited after saving."""
    if config_digest(saved.desired) != saved.config_digest:
        raise PlanFileError(
            "Saved plan was modified after it was made (its digest does not match "
            "its content); run plan --out again"
        )


def _finish(workspace, stored, proposal):
    if not proposal.writes_state:
        return Outcome(proposal, stored.state, applied=False)
    return Outcome(proposal, carry_out(workspace, stored, proposal), applied=True)


# --- import ------------------------------------------------------------------


def import_resource(workspace, address, remote_id, lock_timeout=0.0):
    """Adopt the application the provider runs as ``remote_id`` at ``address``.

    The address must be declared in the configuration, as Terraform requires,
    so the next plan compares the adopted application with its block.
    """
    with workspace.backend.lock("import", lock_timeout):
        stored = workspace.backend.read()
        state = stored.state
        block = _import_block(workspace, state, address, remote_id)
        read = workspace.provider.read()
        found = _found(workspace.provider, read, address, remote_id)
        lifecycle = {k: block[k] for k in ("prevent_destroy",) if k in block}
        attributes = {**found, **lifecycle}
        resource = Resource.at(address, attributes, {"id": remote_id})
        remote = f"{kind_of(address)}.{remote_id}"
        return workspace.backend.write(stored, state.adopted(resource, remote)).state


def _import_block(workspace, state, address, remote_id):
    kind, _ = parse_address(address)
    if kind not in workspace.provider.READS:
        readable = ", ".join(sorted(workspace.provider.READS))
        raise EngineError(
            f'cannot import {address}: provider "{workspace.provider.name}" reads '
            f"only {readable} objects"
        )
    if address in state.resources:
        raise EngineError(
            f"{address} is already in the state; to adopt {remote_id} instead, "
            f'first run "l4plan state rm {address}"'
        )
    for other, resource in state.resources.items():
        if resource.type == kind and resource.attributes.get("name") == remote_id:
            raise EngineError(
                f"{kind} {remote_id} is already managed as {other}; "
                f'"l4plan state mv {other} {address}" renames it instead'
            )
    block = workspace.config.resources().get(address)
    if block is None:
        raise EngineError(
            f'{address} is not in the configuration; declare {kind} "{address.partition(".")[2]}" '
            f"first, then import into it"
        )
    return block


def _found(provider, read, address, remote_id):
    kind = kind_of(address)
    found = read.get(f"{kind}.{remote_id}")
    if found is None:
        running = sorted(a.partition(".")[2] for a in read if a.startswith(f"{kind}."))
        raise EngineError(
            f'provider "{provider.name}" runs no {kind} named {remote_id!r} '
            f"(it runs: {', '.join(running) or 'none'}); check the ID"
        )
    return found
