"""Reconcile on a memory reactor: what binds, what is kept, what drains, what is saved."""

import json

import pytest
from runtime_helpers import Transport, UdpReactor, lb_rule, make_document, make_rule
from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.python.failure import Failure

from l4plan.runtime import document as runtime_document
from l4plan.runtime.metrics import Metrics
from l4plan.runtime.reconcile import LiveConfig, ReconcileError, load_generation, signatures
from l4plan.runtime.routes import ListenerKey, compile_document
from l4plan.runtime.serve import Runtime
from l4plan.runtime.settings import Settings

TCP_7000 = ListenerKey("tcp", "127.0.0.1", 7000)


class Port:
    """A listening port that records whether it was closed."""

    def __init__(self, port):
        self.port = port
        self.listening = True
        self.reading = True

    def stopListening(self):
        self.listening = False

    def stopReading(self):
        self.reading = False

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", self.port)


class Reactor(UdpReactor):
    """A memory reactor on which the ports in ``taken`` cannot be bound."""

    def __init__(self, taken=()):
        super().__init__()
        self.taken = set(taken)
        self.tcp_ports = []

    def _check(self, port, interface):
        if port in self.taken:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))

    def listenTCP(self, port, factory, backlog=50, interface=""):
        self._check(port, interface)
        self.tcp_ports.append(Port(port))
        return self.tcp_ports[-1]

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self._check(port, interface)
        return super().listenUDP(port, protocol, interface, maxPacketSize)


def doc(*rules, **options):
    return make_document(list(rules), **options)


def tcp(edge, origin, **options):
    return make_rule(str(edge), [(edge, [origin])], **options)


def udp(edge, origin):
    return make_rule(str(edge), [(edge, [origin])], protocol="udp")


@pytest.fixture
def live(tmp_path):
    reactor = Reactor(taken={7009})
    runtime = Runtime(reactor, Settings(data_dir=str(tmp_path), drain_timeout=10, splice=False))
    config = LiveConfig.restore(runtime, tmp_path)
    runtime.startService()
    yield config
    runtime.stopService()


def connect(listener):
    """An accepted client connection on ``listener``."""
    leg = listener.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    leg.makeConnection(Transport())
    return leg


def test_added_removed_and_updated_listeners(live):
    """Listeners are compared by (protocol, address, port); a kept one keeps its socket."""
    first = live.apply(doc(tcp(7000, 17000), udp(7001, 17001)))
    assert first.to_dict() == {
        "added": ["tcp 127.0.0.1:7000", "udp 127.0.0.1:7001"],
        "removed": [],
        "updated": [],
    }
    kept = live.runtime.listeners()[TCP_7000]

    second = live.apply(doc(tcp(7000, 17500), tcp(7002, 17002)))

    assert second.to_dict() == {
        "added": ["tcp 127.0.0.1:7002"],
        "removed": ["udp 127.0.0.1:7001"],
        "updated": ["tcp 127.0.0.1:7000"],
    }
    assert live.runtime.listeners()[TCP_7000] is kept
    assert kept.factory.route.origin_ports == (17500,)
    assert [p.port for p in live.runtime.reactor.tcp_ports if p.listening] == [7000, 7002]
    assert live.runtime.reactor.udp_ports[0][2].stopped
    assert live.generation == 2


def test_unchanged_rule_is_not_reported_updated(live):
    """The same document again changes no listener."""
    live.apply(doc(tcp(7000, 17000)))
    assert live.apply(doc(tcp(7000, 17000))).to_dict() == {
        "added": [],
        "removed": [],
        "updated": [],
    }


def test_bind_failure_changes_nothing(live, tmp_path):
    """A port that cannot be bound: the listeners bound for the change are closed,
    the old ones serve on, and neither the document nor the generation moves."""
    live.apply(doc(tcp(7000, 17000)))
    saved = (tmp_path / "applied.json").read_bytes()

    with pytest.raises(ReconcileError) as raised:
        live.apply(doc(tcp(7008, 17008), tcp(7009, 17009)))

    assert raised.value.failed == ["tcp 127.0.0.1:7009: [Errno 98] Address already in use"]
    assert list(live.runtime.listeners()) == [TCP_7000]
    assert [(p.port, p.listening) for p in live.runtime.reactor.tcp_ports] == [
        (7000, True),
        (7008, False),
    ]
    assert (tmp_path / "applied.json").read_bytes() == saved
    assert live.generation == 1 and load_generation(tmp_path) == 1


@pytest.mark.parametrize("failure", [TypeError("Binding is 7009.0"), OSError(24, "Too many open files")])
def test_any_bind_failure_changes_nothing(live, tmp_path, failure):
    """Not only a port in use: whatever a bind raises, the listeners bound for the
    change are closed again and the old ones serve on."""
    live.apply(doc(tcp(7000, 17000)))

    def failing(port, factory, backlog=50, interface=""):
        if port == 7011:
            raise failure
        return Reactor.listenTCP(live.runtime.reactor, port, factory, backlog, interface)

    live.runtime.reactor.listenTCP = failing
    with pytest.raises(ReconcileError) as raised:
        live.apply(doc(tcp(7000, 17000), tcp(7010, 17010), tcp(7011, 17011)))

    assert raised.value.failed == [f"tcp 127.0.0.1:7011: {failure}"]
    assert list(live.runtime.listeners()) == [TCP_7000]
    assert [(p.port, p.listening) for p in live.runtime.reactor.tcp_ports] == [
        (7000, True),
        (7010, False),
    ]
    assert live.generation == 1 and load_generation(tmp_path) == 1


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda d: d["applications"]["app"]["rules"][0]["ports"][0].update(edge=7000.0), "7000.0 is not of type 'integer'"),
        (lambda d: d["applications"]["app"]["rules"][0]["ports"][0].update(edge=True), "True is not of type 'integer'"),
    ],
)
def test_non_integer_ports_are_refused(live, edit, reason):
    """A port written 7000.0 (which JSON Schema calls an integer) or true is refused whole."""
    document = doc(tcp(7000, 17000))
    edit(document)
    with pytest.raises(runtime_document.DocumentError) as raised:
        live.apply(document)
    assert any(reason in r for r in raised.value.reasons), raised.value.reasons
    assert list(live.runtime.listeners()) == []


def test_sub_second_health_checks_are_refused():
    """The runtime accepts no health check the configuration would refuse (interval 1e-9)."""
    pool = {"pool": {"algorithm": "round_robin", "origins": [{"address": "127.0.0.2", "weight": 1}],
                     "health_check": {"interval": 1e-9, "timeout": 1, "unhealthy_threshold": 1, "healthy_threshold": 1}}}
    with pytest.raises(runtime_document.DocumentError, match="health_check: .*'interval': 1e-09.* is not valid"):
        runtime_document.validate(make_document([lb_rule(7000, 17000)], load_balancers=pool))


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"generation": true}', "generation is not a whole number"),
        ('{"generation": 1, "generation": 2}', "appears twice"),
    ],
)
def test_a_bad_generation_file_is_refused(tmp_path, text, reason):
    """generation.json holding true, or a key twice, is refused instead of read as 1."""
    (tmp_path / "generation.json").write_text(text)
    with pytest.raises(runtime_document.DocumentError, match=reason):
        load_generation(tmp_path)


def test_strict_json_refuses_what_json_loads_lets_through():
    """Duplicate keys, NaN and nesting past the stack are ValueErrors, not silent or a RecursionError."""
    for text, reason in (
        ('{"applications": {}, "applications": {}}', "the key 'applications' appears twice"),
        ('{"x": NaN}', "NaN is not a JSON number"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ):
        with pytest.raises(ValueError, match=reason):
            runtime_document.parse_json(text)


def test_invalid_document_changes_nothing(live):
    """An invalid document is refused with its reasons before any listener is touched."""
    with pytest.raises(runtime_document.DocumentError):
        live.apply(doc(tcp(7000, 17000), tcp(7000, 17001)))
    assert live.runtime.listeners() == {} and live.generation == 0


def test_unparsable_source_is_an_invalid_document(live):
    """A source that is no address or network is refused like any invalid document."""
    acl = [{"name": "bad", "action": "deny", "sources": ["not-a-network"], "priority": 1}]
    with pytest.raises(runtime_document.DocumentError, match="not-a-network"):
        live.apply(doc(tcp(7000, 17000), acl=acl, waf=True))
    assert live.runtime.listeners() == {} and live.generation == 0


def test_open_connection_keeps_its_rule_new_one_takes_the_new(live):
    """After a change, a connection accepted before keeps its origin port; a new one uses the new rule."""
    live.apply(doc(tcp(7000, 17000)))
    listener = live.runtime.listeners()[TCP_7000]
    before = connect(listener)
    live.apply(doc(tcp(7000, 17500, passthrough="proxy_protocol_v2")))
    after = connect(listener)

    assert [client[1] for client in live.runtime.reactor.tcpClients] == [17000, 17500]
    assert (before.rule.passthrough, after.rule.passthrough) == ("off", "proxy_protocol_v2")


def test_removed_listener_drains_then_aborts(live):
    """A removed TCP listener stops accepting at once and its connections drain
    until the drain timeout, then are aborted."""
    live.apply(doc(tcp(7000, 17000), tcp(7002, 17002)))
    removed = live.runtime.listeners()[ListenerKey("tcp", "127.0.0.1", 7002)]
    leg = connect(removed)
    live.apply(doc(tcp(7000, 17000)))

    assert not live.runtime.reactor.tcp_ports[1].listening
    assert live.runtime.retiring() == [removed]
    live.runtime.reactor.advance(9)
    assert not leg.transport.disconnecting
    live.runtime.reactor.advance(1)
    assert leg.transport.disconnecting
    leg.connectionLost(Failure(ConnectionDone()))
    assert live.runtime.retiring() == []


def test_saved_document_and_generation_restore(live, tmp_path):
    """The applied document and its generation survive a restart."""
    document = doc(tcp(7000, 17000), udp(7001, 17001))
    live.apply(document)
    assert json.loads((tmp_path / "applied.json").read_text()) == document

    runtime = Runtime(Reactor(), Settings(data_dir=str(tmp_path), splice=False))
    restored = LiveConfig.restore(runtime, tmp_path)
    assert (restored.generation, restored.document) == (1, document)
    assert sorted(map(str, runtime.listeners())) == ["tcp 127.0.0.1:7000", "udp 127.0.0.1:7001"]


def test_signature_covers_what_a_listener_uses():
    """The access rules matter only with WAF on; the application's flags always."""
    acl = [{"name": "office", "action": "allow", "sources": ["10.0.0.0/8"], "priority": 1}]

    def of(document):
        return signatures(document, "app", "127.0.0.1", "::1")

    base = of(doc(tcp(7000, 17000)))
    assert of(doc(tcp(7000, 17000), acl=acl)) == base
    assert of(doc(tcp(7000, 17000), acl=acl, waf=True)) != base
    assert of(doc(tcp(7000, 17000), keepalive=True)) != base


def test_origin_health_survives_a_reconcile(live):
    """An origin found down stays down in the new configuration's load balancer."""
    pool = {
        "pool": {
            "algorithm": "round_robin",
            "origins": [
                {"address": "192.0.2.1", "weight": 1},
                {"address": "192.0.2.2", "weight": 1},
            ],
            "health_check": {
                "interval": 5,
                "timeout": 1,
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
            },
        }
    }
    live.apply(doc(lb_rule(7000, 17000), load_balancers=pool))
    live.runtime.listeners()[TCP_7000].factory.route.rule.origin.backends[0].healthy = False
    live.apply(doc(lb_rule(7000, 17000), tcp(7002, 17002), load_balancers=pool))
    backends = live.runtime.listeners()[TCP_7000].factory.route.rule.origin.backends
    assert [b.healthy for b in backends] == [False, True]


POOL = {
    "algorithm": "round_robin",
    "origins": [{"address": "192.0.2.1", "weight": 1}],
    "health_check": {"interval": 5, "timeout": 1, "unhealthy_threshold": 1, "healthy_threshold": 1},
}
OFFICE = [{"name": "office", "action": "deny", "sources": ["10.0.0.0/8"], "priority": 1}]


def apps(document, **extra):
    """``document`` with more applications, each one rule: name=rule."""
    for name, rule in extra.items():
        app = dict(document["applications"]["app"], domain=f"{name}.example.com", rules=[rule])
        document["applications"][name] = app
    return document


def route(live, port):
    return live.runtime.listeners()[ListenerKey("tcp", "127.0.0.1", port)].factory.route


def test_unchanged_application_keeps_its_routes_and_counters(live):
    """Changing one application leaves the Route and Rule objects (and so the
    counters) of the others as they are; the changed one keeps its counters by key."""
    live.apply(apps(doc(tcp(7000, 17000)), other=tcp(7002, 17002)))
    kept, changed = route(live, 7002), route(live, 7000)
    kept.rule.counters.opened = 3
    changed.rule.counters.opened = 5

    changes = live.apply(apps(doc(tcp(7000, 17500)), other=tcp(7002, 17002)))

    assert changes.to_dict()["updated"] == ["tcp 127.0.0.1:7000"]
    assert route(live, 7002) is kept and route(live, 7000) is not changed
    assert route(live, 7000).rule.counters.opened == 5
    assert live.runtime.metrics.snapshot()["other/tcp/7002"]["opened"] == 3


def test_changed_load_balancer_updates_the_applications_using_it(live):
    """An application whose load balancer changed is compiled again and reported;
    one that does not use it keeps its routes; the health check checks the new one."""
    live.apply(
        apps(doc(lb_rule(7000, 17000), load_balancers={"pool": POOL}), other=tcp(7002, 17002))
    )
    other = route(live, 7002)
    pool = dict(POOL, origins=[{"address": "192.0.2.9", "weight": 1}])

    changes = live.apply(
        apps(doc(lb_rule(7000, 17000), load_balancers={"pool": pool}), other=tcp(7002, 17002))
    )

    assert changes.to_dict()["updated"] == ["tcp 127.0.0.1:7000"]
    balancer = route(live, 7000).rule.origin
    assert [b.address for b in balancer.backends] == ["192.0.2.9"]
    assert route(live, 7002) is other
    assert live.runtime._health_checks == [(balancer, 17000)]


def test_unchanged_load_balancer_is_shared_with_a_changed_application(live):
    """A changed application using an unchanged load balancer gets the same
    object as the unchanged ones (one health, one rotation), restored or applied."""
    pools = {"pool": POOL}
    live.apply(apps(doc(lb_rule(7000, 17000), load_balancers=pools), other=lb_rule(7002, 17002)))
    balancer = route(live, 7002).rule.origin

    live.apply(apps(doc(lb_rule(7000, 16000), load_balancers=pools), other=lb_rule(7002, 17002)))

    assert route(live, 7000).rule.origin is balancer is route(live, 7002).rule.origin
    assert live.runtime._health_checks == [(balancer, 16000)]


def test_health_check_port_follows_a_partial_change(live):
    """The probe port is the lowest TCP origin port over all applications, changed or not."""
    pools = {"pool": POOL}
    live.apply(apps(doc(lb_rule(7000, 17000), load_balancers=pools), other=lb_rule(7002, 15000)))
    assert [port for _, port in live.runtime._health_checks] == [15000]

    live.apply(apps(doc(lb_rule(7000, 17000), load_balancers=pools), other=tcp(7002, 15000)))

    assert [port for _, port in live.runtime._health_checks] == [17000]


def test_changed_access_rules_update_only_applications_checking_them(live):
    """New access rules reach the WAF applications; the others keep their routes."""

    def document(acl):
        result = apps(doc(tcp(7000, 17000), acl=acl, waf=True), other=tcp(7002, 17002))
        result["applications"]["other"]["waf_ip_access_control"] = False
        return result

    live.apply(document([]))
    other = route(live, 7002)

    changes = live.apply(document(OFFICE))

    assert changes.to_dict()["updated"] == ["tcp 127.0.0.1:7000"]
    assert not route(live, 7000).rule.acl.allows("10.1.2.3")
    assert route(live, 7002) is other and other.rule.acl is None


def test_application_moving_a_port_to_another_keeps_the_listener(live):
    """An edge port moved between two changed applications is one listener, updated."""
    live.apply(apps(doc(tcp(7000, 17000)), other=tcp(7002, 17002)))
    kept = live.runtime.listeners()[TCP_7000]

    changes = live.apply(apps(doc(tcp(7003, 17003)), other=tcp(7000, 17000)))

    assert changes.to_dict() == {
        "added": ["tcp 127.0.0.1:7003"],
        "removed": ["tcp 127.0.0.1:7002"],
        "updated": ["tcp 127.0.0.1:7000"],
    }
    assert live.runtime.listeners()[TCP_7000] is kept
    assert kept.factory.route.rule.key == "other/tcp/7000"


def test_first_reconcile_after_restore_reuses_what_was_loaded(live, tmp_path):
    """A restored runtime's listeners are reused by its first reconcile."""
    document = apps(doc(tcp(7000, 17000)), other=tcp(7002, 17002))
    live.apply(document)
    runtime = Runtime(Reactor(), Settings(data_dir=str(tmp_path), splice=False))
    restored = LiveConfig.restore(runtime, tmp_path)
    other = runtime.listeners()[ListenerKey("tcp", "127.0.0.1", 7002)].factory.route

    changes = restored.apply(apps(doc(tcp(7000, 17500)), other=tcp(7002, 17002)))

    assert changes.to_dict()["updated"] == ["tcp 127.0.0.1:7000"]
    assert runtime.listeners()[ListenerKey("tcp", "127.0.0.1", 7002)].factory.route is other


def test_partial_compile_serves_what_a_whole_compile_would(live):
    """After a series of partial changes every listener serves what compiling
    the last document whole gives (rule, origin, access, origin ports)."""
    pools = {"pool": POOL}
    steps = [
        apps(doc(tcp(7000, 17000), load_balancers=pools), other=lb_rule(7002, 17002)),
        apps(
            doc(tcp(7000, 17000), acl=OFFICE, waf=True, load_balancers=pools),
            other=lb_rule(7002, 17002),
        ),
        apps(
            doc(udp(7000, 17000), acl=OFFICE, load_balancers=pools),
            other=lb_rule(7002, 16002),
            third=tcp(7004, 17004),
        ),
        apps(
            doc(tcp(7000, 17100), load_balancers={"pool": dict(POOL, algorithm="source_hash")}),
            other=lb_rule(7002, 16002),
        ),
    ]
    for document in steps:
        live.apply(document)
        whole = compile_document(document, "127.0.0.1", "::1", live.runtime.hosts, Metrics())

        def served(route):
            rule, origin = route.rule, route.rule.origin
            return (
                rule.key,
                rule.protocol,
                rule.passthrough,
                rule.keepalive,
                rule.acl is None,
                rule.acl is not None and rule.acl.allows("10.1.2.3"),
                getattr(origin, "host", None),
                [b.address for b in getattr(origin, "backends", [])],
                getattr(origin, "_choose", None),
                route.origin_ports,
            )

        listeners = live.runtime.listeners()
        assert sorted(map(str, listeners)) == sorted(map(str, whole.routes))
        for key, route in whole.routes.items():
            assert served(listeners[key].server.route) == served(route)
        assert [(lb.backends[0].address, port) for lb, port in live.runtime._health_checks] == [
            (lb.backends[0].address, port) for lb, port in whole.health_checks
        ]


def test_a_sliced_apply_binds_a_slice_per_reactor_turn(live):
    """The admin's apply binds new listeners a slice at a time, the reactor running
    in between, and changes what is served only once the last slice is bound."""
    live.apply(doc(tcp(7000, 17000)))
    results = []
    live.apply_sliced(
        doc(tcp(7000, 17500), tcp(7001, 17001), tcp(7002, 17002), tcp(7003, 17003)), size=2
    ).addBoth(results.append)
    reactor = live.runtime.reactor
    assert results == [] and list(live.runtime.listeners()) == [TCP_7000]
    assert [p.port for p in reactor.tcp_ports] == [7000, 7001, 7002]  # the first slice only
    assert live.runtime.listeners()[TCP_7000].factory.route.origin_ports == (17000,)
    reactor.advance(0)
    assert results[0].to_dict()["added"] == ["tcp 127.0.0.1:7001", "tcp 127.0.0.1:7002", "tcp 127.0.0.1:7003"]
    assert live.generation == 2


def test_a_sliced_apply_failing_in_a_later_slice_changes_nothing(live, tmp_path):
    """A port taken in the second slice closes what the first one bound; nothing moves."""
    live.apply(doc(tcp(7000, 17000)))
    failed = []
    live.apply_sliced(doc(tcp(7007, 1), tcp(7008, 2), tcp(7009, 3)), size=2).addErrback(failed.append)
    live.runtime.reactor.advance(0)
    [failure] = failed
    assert failure.check(ReconcileError)
    assert failure.value.failed == ["tcp 127.0.0.1:7009: [Errno 98] Address already in use"]
    assert list(live.runtime.listeners()) == [TCP_7000]
    assert [(p.port, p.listening) for p in live.runtime.reactor.tcp_ports] == [(7000, True), (7007, False), (7008, False)]
    assert live.generation == 1 and load_generation(tmp_path) == 1
