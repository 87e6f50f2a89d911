"""The runtime's listener services, driven by a memory reactor (no sockets)."""

from runtime_helpers import Transport, UdpReactor, lb_rule, make_document, make_rule
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from l4plan.runtime.metrics import Metrics
from l4plan.runtime.origins import HostCache
from l4plan.runtime.routes import ListenerKey, compile_document
from l4plan.runtime.serve import Runtime, SignalHandler
from l4plan.runtime.settings import Settings

SETTINGS = Settings(drain_timeout=10, splice=False)  # in-memory transports
POOL = {
    "pool": {
        "algorithm": "round_robin",
        "origins": [{"address": "192.0.2.1", "weight": 1}],
        "health_check": {
            "interval": 5,
            "timeout": 1,
            "unhealthy_threshold": 1,
            "healthy_threshold": 1,
        },
    }
}


def compiled(document):
    reactor = UdpReactor()
    return compile_document(document, "127.0.0.1", "::1", HostCache(reactor, 30), Metrics())


def test_listeners_keyed_by_protocol_address_port():
    """Each edge port of each rule listens on --bind, and on --bind6 with ipv6 on."""
    rules = [
        make_rule("7000-7001", [(7000, [17000]), (7001, [17001])]),
        make_rule("53", [(53, [5353])], protocol="udp"),
    ]
    routes = compiled(make_document(rules, ipv6=True)).routes
    assert set(routes) == {
        ListenerKey("tcp", "127.0.0.1", 7000),
        ListenerKey("tcp", "::1", 7000),
        ListenerKey("tcp", "127.0.0.1", 7001),
        ListenerKey("tcp", "::1", 7001),
        ListenerKey("udp", "127.0.0.1", 53),
        ListenerKey("udp", "::1", 53),
    }
    tcp_7001 = routes[ListenerKey("tcp", "::1", 7001)]
    assert tcp_7001.origin_ports == (17001,)
    assert tcp_7001.rule is routes[ListenerKey("tcp", "127.0.0.1", 7000)].rule
    assert tcp_7001.rule.key == "app/tcp/7000-7001"


def test_ipv6_off_listens_on_ipv4_only():
    """Without ipv6 the application has no listener on --bind6."""
    routes = compiled(make_document([make_rule("80", [(80, [8080])])])).routes
    assert list(routes) == [ListenerKey("tcp", "127.0.0.1", 80)]


def test_acl_only_when_waf_on():
    """The site's access rules apply only to applications with WAF IP access control."""
    acl = [{"name": "deny", "action": "deny", "sources": ["0.0.0.0/0"], "priority": 1}]
    off = compiled(make_document([make_rule("80", [(80, [80])])], acl=acl))
    on = compiled(make_document([make_rule("80", [(80, [80])])], acl=acl, waf=True))
    assert next(iter(off.routes.values())).rule.acl is None
    assert not next(iter(on.routes.values())).rule.acl.allows("192.0.2.1")


def test_health_check_probe_port_is_lowest_mapped_port():
    """A load balancer is probed on the lowest origin port its rules use."""
    rules = [lb_rule(80, 8080), lb_rule(81, 8001)]
    checks = compiled(make_document(rules, load_balancers=POOL)).health_checks
    assert [(lb.backends[0].address, port) for lb, port in checks] == [("192.0.2.1", 8001)]
    no_check = {"pool": dict(POOL["pool"], health_check=None)}
    assert compiled(make_document(rules, load_balancers=no_check)).health_checks == []


def start(document, settings=SETTINGS):
    reactor = UdpReactor()
    runtime = Runtime(reactor, settings)
    runtime.load(document)
    runtime.startService()
    return reactor, runtime


def test_start_listens_everywhere_and_probes():
    """Starting the runtime opens every listener and starts the health checks."""
    rules = [lb_rule(80, 8080), make_rule("53", [(53, [53])], protocol="udp")]
    reactor, runtime = start(make_document(rules, load_balancers=POOL, ipv6=True))
    assert sorted((port, interface) for port, _, _, interface in reactor.tcpServers) == [
        (80, "127.0.0.1"),
        (80, "::1"),
    ]
    assert sorted(interface for interface, _, _ in reactor.udp_ports) == ["127.0.0.1", "::1"]
    assert [(c[0], c[1]) for c in reactor.tcpClients] == [("192.0.2.1", 8080)]
    runtime.stopService()
    reactor.advance(60)
    assert len(reactor.tcpClients) == 1  # no probes after stop


def open_connection(reactor):
    factory = reactor.tcpServers[0][1]
    client = IPv4Address("TCP", "198.51.100.1", 1000)
    leg = factory.buildProtocol(client)
    leg.makeConnection(
        Transport(hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=client)
    )
    return leg


def test_stop_waits_for_connections_to_finish():
    """Stopping drains: it completes when the last connection closes by itself."""
    reactor, runtime = start(make_document([make_rule("80", [(80, [8080])])]))
    leg = open_connection(reactor)
    stopped = runtime.stopService()
    assert not stopped.called
    leg.connectionLost(Failure(ConnectionDone()))
    assert stopped.called
    assert reactor.getDelayedCalls() == []


def test_stop_aborts_connections_after_drain_timeout():
    """Connections still open after the drain timeout are aborted."""
    reactor, runtime = start(make_document([make_rule("80", [(80, [8080])])]))
    leg = open_connection(reactor)
    stopped = runtime.stopService()
    reactor.advance(9)
    assert not leg.transport.disconnected
    reactor.advance(1)
    assert leg.transport.disconnected
    leg.connectionLost(Failure(ConnectionDone()))
    assert stopped.called


def test_stop_ends_udp_sessions():
    """Stopping a UDP listener ends its sessions at once."""
    reactor, runtime = start(make_document([make_rule("53", [(53, [5353])], protocol="udp")]))
    _, relay, _ = reactor.udp_ports[0]
    relay.datagramReceived(b"q", ("198.51.100.1", 1000))
    session_socket = reactor.udp_ports[1][2]
    assert runtime.stopService().called
    assert session_socket.stopped and reactor.udp_ports[0][2].stopped


def test_udp_only_load_balancer_is_not_probed_over_tcp():
    """Only TCP rules give a probe port: a UDP-only pool gets no TCP health checks."""
    rules = [lb_rule(53, 5353, protocol="udp"), lb_rule(80, 9000), lb_rule(81, 8080)]
    checks = compiled(make_document(rules, load_balancers=POOL)).health_checks
    assert [port for _, port in checks] == [8080]
    udp_only = compiled(make_document([lb_rule(53, 5353, protocol="udp")], load_balancers=POOL))
    assert udp_only.health_checks == []


def test_first_signal_stops_second_aborts_drain():
    """The first SIGTERM/SIGINT stops the reactor; the next aborts draining connections."""
    reactor, runtime = start(make_document([make_rule("80", [(80, [8080])])]))
    leg = open_connection(reactor)
    handler = SignalHandler(reactor, runtime)
    handler.handle("SIGTERM")
    assert reactor.hasStopped and not leg.transport.disconnected
    handler.handle("SIGINT")
    assert leg.transport.disconnected


def test_a_rule_pointing_at_the_runtime_itself_is_refused():
    """A TCP rule whose origin is its own edge port gets no origin connection (one
    client would chain thousands); a UDP one opens no origin socket."""
    rules = [
        make_rule("7000", [(7000, [7000])]),
        make_rule("7001", [(7001, [7000])], protocol="udp"),  # TCP 7000 is not UDP 7000
        make_rule("7002", [(7002, [7002])], protocol="udp"),
    ]
    reactor, runtime = start(make_document(rules))
    tcp_7000 = runtime.listeners()[ListenerKey("tcp", "127.0.0.1", 7000)]
    leg = tcp_7000.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = Transport()
    leg.makeConnection(transport)
    assert reactor.tcpClients == [] and transport.disconnecting
    assert runtime.metrics.for_rule("app/tcp/7000").origin_failures == 1
    relays = {str(listener.key): listener.relay for listener in runtime if listener.key.protocol == "udp"}
    relays["udp 127.0.0.1:7002"].datagramReceived(b"q", ("198.51.100.1", 1000))
    relays["udp 127.0.0.1:7001"].datagramReceived(b"q", ("198.51.100.1", 1000))
    assert runtime.metrics.for_rule("app/udp/7002").origin_failures == 1
    assert runtime.metrics.for_rule("app/udp/7001").opened == 1
    assert len(reactor.udp_ports) == 2 + 1  # two edge sockets; only the UDP 7001 session got one
    assert runtime.is_own("tcp", "0.0.0.0", 7000) and runtime.is_own("tcp", "127.0.0.1", 7000)
    assert not runtime.is_own("tcp", "127.0.0.2", 7000) and not runtime.is_own("tcp", "origin.example.net", 7000)
