"""Port specifications and the edge-port → origin-port mapping of a rule.

An edge port is a comma list of ports and ranges (``"80,81,100-200"``); an
origin port is one port or one range. The mapping rules are ESA's: one edge
port goes to one origin port or is spread round-robin over an origin range;
N edge ports go all to one origin port or, by position, to a range of exactly
N ports (offset mapping: edge 3000-4000 → origin 5000-6000 sends 3050 to 5050).
"""

from dataclasses import dataclass
from functools import lru_cache

MIN_PORT = 1
MAX_PORT = 65535


class PortError(ValueError):
    """A port specification or mapping that cannot be used; the message says why."""


@dataclass(frozen=True, order=True)
class PortRange:
    first: int
    last: int

    def __len__(self):
        return self.last - self.first + 1

    def __str__(self):
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True)
class PortSpec:
    """An ordered list of port ranges, as written by the user."""

    ranges: tuple[PortRange, ...]

    def __str__(self):
        return ",".join(str(r) for r in self.ranges)

    def __len__(self):
        return sum(len(r) for r in self.ranges)

    def ports(self):
        """Every port, in the order written."""
        return tuple(p for r in self.ranges for p in range(r.first, r.last + 1))

    @property
    def is_single(self):
        return len(self.ranges) == 1 and len(self.ranges[0]) == 1


@dataclass(frozen=True)
class PortMapping:
    """One edge port and the origin ports it sends to (round-robin when several)."""

    edge: int
    origin: tuple[int, ...]


PORT_FORMS = (
    f'Ports are {MIN_PORT}-{MAX_PORT}, written "80", a list "80,81,82", a range '
    '"100-200" or both "80,100-200", without overlaps'
)


def _parse_port(text, missing):
    text = text.strip()
    if not text:
        raise PortError(missing)
    if not (text.isascii() and text.isdigit()):
        raise PortError(f'"{text}" is not a port number (digits 0-9 only)')
    port = int(text)
    if not MIN_PORT <= port <= MAX_PORT:
        raise PortError(f"port {port} is outside {MIN_PORT}-{MAX_PORT}")
    return port


def _parse_range(text):
    if not text.strip():
        raise PortError("an entry is empty (two commas in a row, or a comma at an end)")
    first, sep, last = text.partition("-")
    low = _parse_port(first, f'range "{text.strip()}" has no first port')
    high = _parse_port(last, f'range "{text.strip()}" has no last port') if sep else low
    if low > high:
        raise PortError(f'range "{text.strip()}" runs backwards; write "{high}-{low}"')
    return PortRange(low, high)


@lru_cache(maxsize=65536)
def parse_port_spec(value):
    """Parse ``80`` / ``"80,81,100-200"`` into a PortSpec; reject overlaps.

    Cached: specs are immutable and large configurations repeat them."""
    text = str(value).strip()
    if not text:
        raise PortError("empty port specification")
    ranges = tuple(_parse_range(part) for part in text.split(","))
    _check_no_overlap(ranges)
    return PortSpec(ranges)


def spec_of(ports):
    """The compact PortSpec of sorted, distinct ports: ``[80, 81, 90]`` → ``80-81,90``."""
    ranges: list[PortRange] = []
    for port in ports:
        if ranges and ranges[-1].last == port - 1:
            ranges[-1] = PortRange(ranges[-1].first, port)
        else:
            ranges.append(PortRange(port, port))
    return PortSpec(tuple(ranges))


def _check_no_overlap(ranges):
    ordered = sorted(ranges)
    for before, after in zip(ordered, ordered[1:]):
        if after.first <= before.last:
            raise PortError(f'"{before}" and "{after}" overlap')


def parse_origin_port(value):
    """Parse an origin port: exactly one port or one range."""
    spec = parse_port_spec(value)
    if len(spec.ranges) != 1:
        raise PortError(f'origin port "{spec}" must be one port or one range, not a list')
    return spec


def map_ports(edge, origin):
    """The expanded mapping of a rule, or PortError when the lengths do not fit."""
    edge_ports = edge.ports()
    origin_ports = origin.ports()
    if len(edge_ports) == 1:
        return (PortMapping(edge_ports[0], origin_ports),)
    if len(origin_ports) == 1:
        return tuple(PortMapping(port, origin_ports) for port in edge_ports)
    if len(origin_ports) != len(edge_ports):
        raise PortError(
            f"edge port has {len(edge_ports)} ports but origin port has "
            f"{len(origin_ports)}; a list or range of edge ports maps to one "
            f"origin port or to a range of exactly {len(edge_ports)} ports"
        )
    return tuple(PortMapping(e, (o,)) for e, o in zip(edge_ports, origin_ports))


@lru_cache(maxsize=65536)
def mapping_of(edge_port, origin_port):
    """The mapping of a rule as written (``"7000-7010"``, ``"17000-17010"``):
    the one derivation the plan and the runtime document share."""
    return map_ports(parse_port_spec(edge_port), parse_origin_port(origin_port))
