"""The state as a value: resources by address, lineage and serial.

Everything here is pure. Changing the resources gives a new ``State`` whose
serial is one higher; giving the same resources gives the very same ``State``,
so a caller cannot bump the serial without a change of content.
"""

import json
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Iterable, Mapping

from l4plan import __version__
from l4plan.names import BLOCK_NAME, BLOCK_NAME_RE, HOST_NAME_RE
from l4plan.state.errors import InvalidAddress, ResourceExists, ResourceNotFound

FORMAT_VERSION = 1

# schemas/state.schema.json ($defs/address) repeats these; a test checks.
NAME_PATTERNS = {
    "application": BLOCK_NAME_RE,
    "ip_access_rule": BLOCK_NAME_RE,
    "load_balancer": BLOCK_NAME_RE,
    "site": HOST_NAME_RE,
}


def parse_address(address):
    """Split ``TYPE.NAME`` into its parts, refusing unknown types and bad names."""
    kind, dot, name = address.partition(".")
    if not dot or kind not in NAME_PATTERNS:
        raise InvalidAddress(
            f"invalid address {address!r}: expected TYPE.NAME with TYPE one of "
            f"{', '.join(sorted(NAME_PATTERNS))} (e.g. application.game)"
        )
    if not NAME_PATTERNS[kind].fullmatch(name):
        what = "a host name" if kind == "site" else f"^{BLOCK_NAME}$"
        raise InvalidAddress(
            f"invalid address {address!r}: the name {name!r} must match {what}"
        )
    return kind, name


def _json_copy(value):
    """A deep copy through JSON, so state holds exactly what a file gives back.

    Tuples become lists here rather than after a round trip, which would
    otherwise look like a change of content and bump the serial; sorted keys
    make the file the same for the same content.
    """
    return json.loads(json.dumps(value, allow_nan=False, sort_keys=True))


@dataclass(frozen=True)
class Resource:
    """One object at an address: applied attributes and the provider's identity.

    ``attributes`` and ``identity`` are JSON copies; treat them as read-only.
    """

    type: str
    name: str
    attributes: Mapping = field(default_factory=dict)
    identity: Mapping = field(default_factory=dict)

    def __post_init__(self):
        parse_address(self.address)
        object.__setattr__(self, "attributes", _json_copy(dict(self.attributes)))
        object.__setattr__(self, "identity", _json_copy(dict(self.identity)))

    @property
    def address(self):
        return f"{self.type}.{self.name}"

    @property
    def remote_address(self):
        """The address of the object the provider runs: the applied ``name``,
        which differs from ``address`` after ``state mv`` until the next apply."""
        return f"{self.type}.{self.attributes.get('name', self.name)}"

    @classmethod
    def at(cls, address, attributes, identity=None):
        """The resource at ``address`` (``application.game``)."""
        kind, name = parse_address(address)
        return cls(kind, name, attributes, identity or {})

    @classmethod
    def from_dict(cls, data):
        return cls(data["type"], data["name"], data["attributes"], data["identity"])

    def to_dict(self):
        return {
            "type": self.type,
            "name": self.name,
            "attributes": self.attributes,
            "identity": self.identity,
        }


@dataclass(frozen=True)
class State:
    """What l4plan last applied.

    ``lineage`` is None until the first state is written; the writer gives it
    a uuid4 then and it never changes afterwards. ``serial`` counts changes of
    ``resources`` and ``unmanaged``. ``unmanaged`` holds the provider-side
    addresses of objects ``state rm`` let go: they keep running, and plans
    leave them alone until they are imported again. ``pending`` holds the
    desired resources of an apply whose outcome is unknown (the provider took
    the change and gave no answer), so the next plan can tell l4plan's own
    change from one made outside it; the next write that records resources
    clears it.
    """

    lineage: str | None = None
    serial: int = 0
    resources: Mapping[str, Resource] = field(default_factory=dict)
    l4plan_version: str = __version__
    format_version: int = FORMAT_VERSION
    unmanaged: tuple[str, ...] = ()
    pending: Mapping | None = None

    def __post_init__(self):
        for address, resource in self.resources.items():
            if address != resource.address:
                raise ValueError(f"{resource.address} filed under {address}")
        ordered = dict(sorted(self.resources.items()))
        object.__setattr__(self, "resources", MappingProxyType(ordered))

    @classmethod
    def empty(cls):
        """The state before anything was applied (what a missing file means)."""
        return cls()

    def with_resources(self, resources: Iterable[Resource], unmanaged=None):
        """This state holding exactly ``resources`` (and ``unmanaged``, when
        given); the serial moves on a change."""
        new = {}
        for resource in resources:
            if resource.address in new:
                raise ValueError(f"{resource.address} given twice")
            new[resource.address] = resource
        unmanaged = self.unmanaged if unmanaged is None else tuple(sorted(unmanaged))
        if new == dict(self.resources) and unmanaged == self.unmanaged:
            return self
        return replace(self, serial=self.serial + 1, resources=new, unmanaged=unmanaged)

    def with_pending(self, desired):
        """This state remembering ``desired`` as an apply of unknown outcome."""
        return replace(self, serial=self.serial + 1, pending=_json_copy(dict(desired)))

    def settled(self):
        """This state with no apply of unknown outcome left to recognise."""
        if self.pending is None:
            return self
        return replace(self, serial=self.serial + 1, pending=None)

    def with_resource(self, resource):
        """This state with ``resource`` added, or replacing the one at its address."""
        kept = (r for a, r in self.resources.items() if a != resource.address)
        return self.with_resources([*kept, resource])

    def resource(self, address):
        """The resource at ``address``, or ResourceNotFound."""
        parse_address(address)
        try:
            return self.resources[address]
        except KeyError:
            raise ResourceNotFound(
                f"{address} is not in the state; "
                f'"l4plan state list" shows the addresses it holds'
            ) from None

    def attributes(self):
        """Attributes by address: the form the diff compares with the config."""
        return {a: r.attributes for a, r in self.resources.items()}

    def without(self, *addresses):
        """This state less ``addresses``, all of which must be present; the
        objects behind them become unmanaged."""
        forgotten = {self.resource(address).remote_address for address in addresses}
        kept = (r for a, r in self.resources.items() if a not in addresses)
        return self.with_resources(kept, set(self.unmanaged) | forgotten)

    def adopted(self, resource, remote_address):
        """This state holding ``resource``, which manages ``remote_address``
        again if ``state rm`` had let it go (an import)."""
        kept = [r for a, r in self.resources.items() if a != resource.address]
        return self.with_resources([*kept, resource], set(self.unmanaged) - {remote_address})

    def moved(self, source, destination):
        """This state with the resource at ``source`` renamed to ``destination``."""
        resource = self.resource(source)
        kind, name = parse_address(destination)
        if kind != resource.type:
            raise InvalidAddress(
                f"cannot move {source} to {destination}: "
                f"a resource keeps its type, so TO must be {resource.type}.NAME"
            )
        if destination in self.resources:
            raise ResourceExists(
                f"cannot move {source} to {destination}: {destination} is already "
                f'in the state; remove it first with "l4plan state rm {destination}"'
            )
        renamed = replace(resource, name=name)
        kept = (r for a, r in self.resources.items() if a != source)
        return self.with_resources([*kept, renamed])

    def to_dict(self):
        """The JSON document of the state file, keys in a stable order."""
        return {
            "format_version": self.format_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "l4plan_version": self.l4plan_version,
            "resources": {a: r.to_dict() for a, r in self.resources.items()},
            **({"unmanaged": list(self.unmanaged)} if self.unmanaged else {}),
            **({"pending": self.pending} if self.pending is not None else {}),
        }

    @classmethod
    def from_dict(cls, data):
        """The state of a document already validated against the schema."""
        resources = {a: Resource.from_dict(r) for a, r in data["resources"].items()}
        return cls(
            lineage=data["lineage"],
            serial=data["serial"],
            resources=resources,
            l4plan_version=data["l4plan_version"],
            format_version=data["format_version"],
            unmanaged=tuple(data.get("unmanaged", ())),
            pending=data.get("pending"),
        )
