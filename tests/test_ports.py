"""Port specifications and mappings, by example and by property."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from l4plan.ports import PortError, PortMapping, PortRange, PortSpec, map_ports, parse_origin_port, parse_port_spec


@st.composite
def port_specs(draw, max_ranges=5):
    """Non-overlapping ranges in any written order."""
    cuts = sorted(draw(st.sets(st.integers(1, 65535), min_size=1, max_size=2 * max_ranges)))
    pairs = [(cuts[i], cuts[i + 1] if i + 1 < len(cuts) else cuts[i]) for i in range(0, len(cuts), 2)]
    ranges = [PortRange(a, b) for a, b in pairs]
    return PortSpec(tuple(draw(st.permutations(ranges))))


@given(port_specs())
def test_parse_of_format_is_identity(spec):
    """Formatting a spec and parsing it back gives the same spec."""
    assert parse_port_spec(str(spec)) == spec


@given(port_specs(max_ranges=1), st.integers(1, 65535))
def test_equal_length_mapping_is_a_bijection(edge, origin_first):
    """N edge ports onto an N-long origin range: every origin port used exactly once, by position."""
    count = len(edge)
    if count < 2 or origin_first + count - 1 > 65535:
        return
    origin = parse_origin_port(f"{origin_first}-{origin_first + count - 1}")
    mapping = map_ports(edge, origin)
    assert [m.edge for m in mapping] == list(edge.ports())
    assert sorted(m.origin[0] for m in mapping) == list(origin.ports())
    assert all(m.origin[0] - m.edge == origin_first - edge.ranges[0].first for m in mapping)


@given(port_specs(), st.integers(1, 65535))
def test_many_to_one_sends_every_edge_port_to_the_one_origin(edge, origin_port):
    """Any edge list onto a single origin port: all to one."""
    mapping = map_ports(edge, parse_origin_port(origin_port))
    assert {m.origin for m in mapping} == {(origin_port,)}
    assert len(mapping) == len(edge)


def test_offset_mapping_sends_3050_to_5050():
    """DESIGN's example: edge 3000-4000 → origin 5000-6000 maps 3050 to 5050."""
    mapping = map_ports(parse_port_spec("3000-4000"), parse_origin_port("5000-6000"))
    assert PortMapping(3050, (5050,)) in mapping
    assert len(mapping) == 1001


def test_single_edge_port_spreads_over_the_origin_range():
    """One edge port onto a range: the whole range, for round-robin."""
    assert map_ports(parse_port_spec("80"), parse_origin_port("8000-8003")) == (
        PortMapping(80, (8000, 8001, 8002, 8003)),
    )


def test_list_maps_by_position_onto_a_range():
    """A list of edge ports maps by position too."""
    mapping = map_ports(parse_port_spec("80,443,8000-8001"), parse_origin_port("9000-9003"))
    assert [(m.edge, m.origin) for m in mapping] == [(80, (9000,)), (443, (9001,)), (8000, (9002,)), (8001, (9003,))]


def test_length_mismatch_states_both_lengths():
    """The error says how many ports each side has."""
    with pytest.raises(PortError, match="edge port has 11 ports but origin port has 6"):
        map_ports(parse_port_spec("3000-3010"), parse_origin_port("5000-5005"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("0", "port 0 is outside 1-65535"),
        ("65536", "port 65536 is outside 1-65535"),
        ("80-70", 'range "80-70" runs backwards; write "70-80"'),
        ("80,79-81", '"79-81" and "80" overlap'),
        ("http", '"http" is not a port number (digits 0-9 only)'),
        ("80,,81", "an entry is empty (two commas in a row, or a comma at an end)"),
        ("٨٠", '"٨٠" is not a port number (digits 0-9 only)'),
        ("", "empty port specification"),
    ],
)
def test_bad_specs_say_why(text, message):
    """Each malformed spec is rejected with its reason."""
    with pytest.raises(PortError) as error:
        parse_port_spec(text)
    assert str(error.value) == message


def test_origin_port_is_one_port_or_one_range():
    """A list is not an origin port."""
    assert str(parse_origin_port(" 5000 - 6000 ")) == "5000-6000"
    with pytest.raises(PortError, match="must be one port or one range"):
        parse_origin_port("5000,5001")


def test_numbers_are_accepted_as_ports():
    """JSON and HCL numbers parse like their text."""
    assert parse_port_spec(443) == parse_port_spec("443")
