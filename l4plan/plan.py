"""The plan: a pure value saying what apply would do, and the safety gates.

A ``Plan`` holds ``Change``s in a deterministic order (action, then address)
and the drift found by refresh. ``to_dict()`` is the stable machine form
(``schemas/plan.schema.json``); every renderer works from it, so the text, JSON
and Markdown outputs cannot tell different stories. Building a plan does no
I/O; the CLI decides whether to call ``raise_if_unsafe()``.
"""

from dataclasses import dataclass
from enum import Enum

from l4plan import __version__

FORMAT_VERSION = "2.0"


#: The reason of a drift change that is l4plan's own: an apply of unknown
#: outcome made it (the plan says so, not "changed outside of l4plan").
OUTCOME_UNKNOWN_REASON = "was changed by l4plan's last apply, whose outcome was unknown"


def kind_of(address):
    """The type part of an address: ``application.game`` → ``application``."""
    return address.partition(".")[0]


class Action(Enum):
    """What happens to an address; the value is the glyph the plan shows.

    Definition order is display order: the order of the legend.
    """

    CREATE = "+"
    UPDATE = "~"
    DELETE = "-"
    REPLACE = "-/+"
    NO_OP = " "

    @property
    def word(self):
        """The name used in JSON: ``create``, ``update``, ``delete``, ``replace``, ``no-op``."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_word(cls, word):
        return cls[word.upper().replace("-", "_")]

    @property
    def rank(self):
        return list(Action).index(self)


@dataclass(frozen=True)
class AttributeChange:
    """One value that differs inside an object.

    ``path`` leads from the object's top through keys and list indices
    (``("origins", 1, "weight")``); the side without a value there is None:
    ``before`` for an added origin, ``after`` for a removed one.
    """

    path: tuple[str | int, ...]
    before: object = None
    after: object = None

    def to_dict(self):
        return {"path": list(self.path), "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, data):
        return cls(tuple(data["path"]), data["before"], data["after"])


@dataclass(frozen=True)
class RuleChange:
    """One rule of an application, known by ``protocol/edge_port``.

    ``mapping`` is the resulting port mapping of an added or changed rule
    (None for a removed one), computed here so renderers need only the plan.
    ``open_connections`` is how many connections or sessions a changed or
    removed rule has open on the runtime now (None when not asked);
    ``kept_ports`` are the edge ports of a removed rule that another rule
    still serves, so their listeners and connections stay (None: none).
    """

    key: str
    action: Action
    before: dict | None
    after: dict | None
    changed_attributes: tuple[str, ...] = ()
    mapping: str | None = None
    open_connections: int | None = None
    kept_ports: str | None = None

    def to_dict(self):
        data = {
            "key": self.key,
            "action": self.action.word,
            "before": self.before,
            "after": self.after,
            "changed_attributes": list(self.changed_attributes),
            "mapping": self.mapping,
        }
        if self.open_connections is not None:
            data["open_connections"] = self.open_connections
        if self.kept_ports is not None:
            data["kept_ports"] = self.kept_ports
        return data

    @classmethod
    def from_dict(cls, data):
        return cls(
            key=data["key"],
            action=Action.from_word(data["action"]),
            before=data["before"],
            after=data["after"],
            changed_attributes=tuple(data["changed_attributes"]),
            mapping=data["mapping"],
            open_connections=data.get("open_connections"),
            kept_ports=data.get("kept_ports"),
        )


@dataclass(frozen=True)
class Change:
    """What happens to one address.

    ``before`` is None for a create, ``after`` is None for a delete; for the
    other actions both are set (but for a no-op read from the plan JSON,
    which keeps only its address and action). ``attribute_changes`` says where an update's
    or a replace's attributes differ, down to an element of a list (rules
    aside: ``rule_changes`` covers them). ``reason`` is for the UI only and
    must not drive apply.
    """

    address: str
    action: Action
    before: dict | None
    after: dict | None
    reason: str | None = None
    replace_paths: tuple[tuple[str, ...], ...] = ()
    attribute_changes: tuple[AttributeChange, ...] = ()
    rule_changes: tuple[RuleChange, ...] = ()

    @property
    def changed_attributes(self):
        """The top-level attributes that differ, sorted."""
        return tuple(sorted({c.path[0] for c in self.attribute_changes}))

    @property
    def sort_key(self):
        return (self.action.rank, self.address)

    @property
    def kind(self):
        """The address type: ``application``, ``load_balancer``, …"""
        return kind_of(self.address)

    def to_dict(self):
        kind, _, name = self.address.partition(".")
        return {
            "address": self.address,
            "type": kind,
            "name": name,
            "action": self.action.word,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "replace_paths": [list(p) for p in self.replace_paths],
            "changed_attributes": list(self.changed_attributes),
            "attribute_changes": [c.to_dict() for c in self.attribute_changes],
            "rule_changes": [r.to_dict() for r in self.rule_changes],
        }

    def to_brief_dict(self):
        """A no-op as the plan JSON gives it: nothing but its address and action."""
        return {"address": self.address, "action": self.action.word}

    @classmethod
    def from_dict(cls, data):
        """The change of either form; a brief no-op has neither before nor after."""
        return cls(
            address=data["address"],
            action=Action.from_word(data["action"]),
            before=data.get("before"),
            after=data.get("after"),
            reason=data.get("reason"),
            replace_paths=tuple(tuple(p) for p in data.get("replace_paths", ())),
            attribute_changes=tuple(AttributeChange.from_dict(c) for c in data.get("attribute_changes", ())),
            rule_changes=tuple(RuleChange.from_dict(r) for r in data.get("rule_changes", ())),
        )


class PlanError(Exception):
    """A plan that must not be applied whatever the flags say."""


class PreventDestroyError(PlanError):
    """The plan would destroy applications that have ``prevent_destroy`` set."""

    def __init__(self, changes):
        self.addresses = tuple(c.address for c in changes)
        lines = [
            f"{c.address} has lifecycle.prevent_destroy set, but this plan would "
            f"{'replace' if c.action is Action.REPLACE else 'destroy'} it."
            for c in changes
        ]
        fix = (
            "To go ahead, set prevent_destroy = false in its lifecycle block and "
            "apply that first; to keep it, undo the change that destroys it."
        )
        super().__init__("\n".join([*lines, fix]))


class UnsafePlan(PlanError):
    """A plan past a safety threshold; ``--force`` gets past it."""


class TooMuchChange(UnsafePlan):
    """Too large a share of the applications would be destroyed or replaced."""


def _destroys(change):
    return change.action in (Action.DELETE, Action.REPLACE)


@dataclass(frozen=True)
class Plan:
    """The changes apply would make, the drift refresh found, and what they rest on.

    ``lineage`` and ``serial`` identify the state the plan was made against,
    so a saved plan can be refused once that state has moved on.
    ``unmanaged`` names the objects ``state rm`` let go: apply leaves them
    running as they are. ``mode`` is Terraform's: ``normal``, ``destroy`` or
    ``refresh-only`` (which records drift and changes nothing).
    """

    # Safety thresholds, octodns style: a plan destroying or replacing more
    # than this share of at least MIN_EXISTING applications needs --force.
    MAX_SAFE_DESTROY_FRACTION = 1 / 3
    MIN_EXISTING = 10

    changes: tuple[Change, ...] = ()
    drift: tuple[Change, ...] = ()
    lineage: str | None = None
    serial: int = 0
    l4plan_version: str = __version__
    unmanaged: tuple[str, ...] = ()
    mode: str = "normal"

    def __post_init__(self):
        for name in ("changes", "drift"):
            ordered = tuple(sorted(getattr(self, name), key=lambda c: c.sort_key))
            object.__setattr__(self, name, ordered)

    @property
    def has_changes(self):
        return any(c.action is not Action.NO_OP for c in self.changes)

    @property
    def summary(self):
        """Counts as Terraform gives them: a replace is one add and one destroy."""
        actions = [c.action for c in self.changes]
        replaced = actions.count(Action.REPLACE)
        return {
            "add": actions.count(Action.CREATE) + replaced,
            "change": actions.count(Action.UPDATE),
            "destroy": actions.count(Action.DELETE) + replaced,
        }

    def check_prevent_destroy(self):
        """Raise PreventDestroyError when a protected application would be destroyed."""
        protected = [c for c in self.changes if _destroys(c) and _prevents_destroy(c)]
        if protected:
            raise PreventDestroyError(protected)

    def raise_if_unsafe(self):
        """Raise TooMuchChange past the thresholds; the CLI skips this with --force."""
        apps = [c for c in self.changes if c.kind == "application" and c.before]
        doomed = [c for c in apps if _destroys(c)]
        if len(apps) < self.MIN_EXISTING:
            return
        if len(doomed) > len(apps) * self.MAX_SAFE_DESTROY_FRACTION:
            raise TooMuchChange(
                f"Too many applications would be destroyed or replaced: "
                f"{len(doomed)} of {len(apps)}, more than "
                f"{self.MAX_SAFE_DESTROY_FRACTION:.0%}; --force required"
            )

    def to_dict(self, whole_no_ops=False):
        """The JSON form documented by schemas/plan.schema.json.

        A no-op is its address and action only, as 1,000 unchanged
        applications would otherwise fill megabytes; ``whole_no_ops`` keeps
        them whole for a saved plan, whose apply checks that the target
        still runs every "before" (check_unchanged_since).
        """
        return {
            "format_version": FORMAT_VERSION,
            "l4plan_version": self.l4plan_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "changes": [
                c.to_dict() if whole_no_ops or c.action is not Action.NO_OP else c.to_brief_dict()
                for c in self.changes
            ],
            "drift": [c.to_dict() for c in self.drift],
            "summary": self.summary,
            "has_changes": self.has_changes,
            **({"unmanaged": list(self.unmanaged)} if self.unmanaged else {}),
            **({"mode": self.mode} if self.mode != "normal" else {}),
        }

    @classmethod
    def from_dict(cls, data):
        """The plan of a document already validated against the schema."""
        return cls(
            changes=tuple(Change.from_dict(c) for c in data["changes"]),
            drift=tuple(Change.from_dict(c) for c in data["drift"]),
            lineage=data["lineage"],
            serial=data["serial"],
            l4plan_version=data["l4plan_version"],
            unmanaged=tuple(data.get("unmanaged", ())),
            mode=data.get("mode", "normal"),
        )


def _prevents_destroy(change):
    """Either side counts: the state remembers protection the config dropped."""
    return any(
        (side or {}).get("prevent_destroy") for side in (change.before, change.after)
    )
