"""The product rules of DESIGN §2: for each, a configuration that keeps it and one that breaks it."""

import json

import pytest

from l4plan.config.variables import VariableInputs
from l4plan.diagnostics import ConfigError
from l4plan.ports import PortMapping, mapping_of
from l4plan.validate import load_config
from tests.conftest import EXAMPLES

SITE = 'site "example.com" {\n  plan = "enterprise"\n  ddos_full_protection = true\n}\n'


def app(name="game", domain=None, rules=('tcp', '7000', '192.0.2.10', '17000'), extra=""):
    domain = domain or f"{name}.example.com"
    rule_blocks = rules if isinstance(rules[0], tuple) else (rules,)
    body = "".join(_rule(*r) for r in rule_blocks)
    return f'application "{name}" {{\n  domain = "{domain}"\n{extra}{body}}}\n'


def _rule(protocol, edge, origin, origin_port, extra=""):
    return (
        f'  rule {{\n    protocol = "{protocol}"\n    edge_port = "{edge}"\n'
        f'    origin = "{origin}"\n    origin_port = "{origin_port}"\n{extra}  }}\n'
    )


def load(write_config, *texts, inputs=VariableInputs()):
    files = {f"{i:02d}.l4.hcl": t for i, t in enumerate(texts)}
    return load_config(write_config(files), inputs)


def errors(write_config, *texts, inputs=VariableInputs()):
    with pytest.raises(ConfigError) as error:
        load(write_config, *texts, inputs=inputs)
    return [f"{d.filename}:{d.line} {d.path}: {d.summary}" for d in error.value.diagnostics]


def test_examples_are_valid():
    """The shipped examples validate; their rules map ports as ESA does."""
    config = load_config(EXAMPLES / "game")
    game = next(a for a in config.applications if a.name == "game")
    first, third = game.rules[0], game.rules[2]
    assert mapping_of(str(first.edge_port), str(first.origin_port))[5] == PortMapping(7005, (17005,))
    assert mapping_of(str(third.edge_port), str(third.origin_port)) == (PortMapping(7000, (27000, 27001, 27002, 27003)),)
    assert [r.name for r in config.ip_access_rules] == ["office", "block-scanners"]
    assert load_config(EXAMPLES / "quickstart").applications[0].rules[1].protocol == "udp"


def test_tcp_and_udp_on_the_same_port_are_different_ports(write_config):
    """TCP 7000 and UDP 7000 do not clash."""
    config = load(write_config, SITE, app(rules=(("tcp", "7000", "192.0.2.1", "1"), ("udp", "7000", "192.0.2.1", "1"))))
    assert [r.key for r in config.applications[0].rules] == ["tcp/7000", "udp/7000"]


def test_edge_port_clash_across_applications_names_both_rules(write_config):
    """The same TCP port in two applications is an error naming both."""
    found = errors(write_config, SITE, app(), app("other", rules=("tcp", "6000-7000", "192.0.2.1", "1")))
    assert found == [
        "01.l4.hcl:5 application.game.rule[0].edge_port: tcp edge port 7000 of application.game rule "
        "tcp/7000 is also used by application.other rule tcp/6000-7000 (02.l4.hcl:3)"
    ]


def test_adjacent_ranges_do_not_clash(write_config):
    """6000-6999 and 7000 touch but do not overlap."""
    load(write_config, SITE, app(), app("other", rules=("tcp", "6000-6999", "192.0.2.1", "1")))


@pytest.mark.parametrize(
    "attribute, service",
    [
        ("layer7_domains", "Layer 7 (HTTP) service"),
        ("load_balancing_domains", "load balancing service"),
        ("edge_function_domains", "edge function"),
    ],
)
def test_domain_used_by_another_service(write_config, attribute, service):
    """A domain taken by Layer 7, load balancing or an edge function is refused; others pass."""
    site = SITE.replace("}\n", f'  {attribute} = ["game.example.com"]\n}}\n')
    assert errors(write_config, site, app())[0].endswith(f"already used by a {service} (site.example.com.{attribute})")
    load(write_config, site, app(domain="play.example.com"))


def test_apex_domain_is_inside_the_zone(write_config):
    """The zone apex itself is a valid application domain."""
    assert load(write_config, SITE, app(domain="example.com")).applications[0].domain == "example.com"


def test_keepalive_needs_ddos_and_excludes_china_optimization(write_config):
    """keepalive_protection is refused with china_mainland_network_optimization, allowed otherwise."""
    keepalive = "  keepalive_protection = true\n"
    load(write_config, SITE, app(extra=keepalive))
    site = SITE.replace("}\n", "  china_mainland_network_optimization = true\n}\n")
    assert errors(write_config, site, app(extra=keepalive)) == [
        "01.l4.hcl:3 application.game.keepalive_protection: keepalive_protection cannot be combined "
        "with the site's china_mainland_network_optimization"
    ]


@pytest.mark.parametrize(
    "origin_type, origin, message",
    [
        ("domain", "bad_host", '"bad_host" is not a valid host name (origin_type = "domain")'),
        ("object_storage", "bucket..oss.example.net", 'is not a valid host name (origin_type = "object_storage")'),
        ("ip", "192.0.2.300", 'is not an IP address (origin_type = "ip")'),
    ],
)
def test_origin_must_fit_its_type(write_config, origin_type, origin, message):
    """ip needs an address, domain and object_storage need host names."""
    rule = ("tcp", "7000", origin, "1", f'    origin_type = "{origin_type}"\n')
    assert message in errors(write_config, SITE, app(rules=rule))[0]


def test_origin_type_is_inferred(write_config):
    """An IP address infers ip, a host name infers domain, IPv6 included."""
    config = load(write_config, SITE, app(rules=(("tcp", "1", "2001:db8::1", "1"), ("tcp", "2", "origin.example.net", "1"))))
    assert [r.origin_type for r in config.applications[0].rules] == ["ip", "domain"]


def test_load_balancer_reference_keeps_when_declared(write_config):
    """origin_type load_balancer naming a declared pool is valid."""
    pool = 'load_balancer "pool" {\n  origin {\n    address = "192.0.2.10"\n  }\n}\n'
    rule = ("tcp", "7000", "pool", "1", '    origin_type = "load_balancer"\n')
    config = load(write_config, SITE, pool, app(rules=rule))
    assert config.load_balancers[0].algorithm == "round_robin"
    assert config.load_balancers[0].health_check is None


def test_all_errors_are_reported_at_once(write_config):
    """Schema errors and rule errors of several objects come together, in file order."""
    broken = app(rules=(("tcp", "7000-7002", "192.0.2.1", "1-2"), ("udp", "9", "192.0.2.1", "1", '    client_ip_passthrough = "proxy_protocol_v1"\n')))
    found = errors(write_config, SITE.replace("enterprise", "basic"), broken, app("other", extra="  ipv6 = 1\n"))
    assert [f.split(" ")[1] for f in found] == [
        "site.example.com.plan:",
        "application.game.rule[0].origin_port:",
        "application.game.rule[1].client_ip_passthrough:",
        "application.other.ipv6:",
    ]


def test_block_declared_in_two_files(write_config):
    """The same application in two files is an error naming the first place."""
    assert errors(write_config, SITE, app(), app()) == [
        '02.l4.hcl:1 application.game: application "game" is declared twice; first at 01.l4.hcl:1'
    ]


def test_json_mirrors_hcl(write_config, tmp_path):
    """A *.l4.json file gives the same model as the HCL it mirrors, with its own line numbers."""
    hcl = load(write_config, SITE, app(rules=("udp", "53,5353", "192.0.2.1", "53")))
    (tmp_path / "01.l4.hcl").unlink()
    document = {
        "application": {
            "game": {"domain": "game.example.com", "rule": {"protocol": "udp", "edge_port": "53,5353", "origin": "192.0.2.1", "origin_port": 53}}
        }
    }
    (tmp_path / "01.l4.json").write_text(json.dumps(document, indent=2))
    assert load_config(tmp_path).applications == hcl.applications
    document["application"]["game"]["rule"]["origin_port"] = "53-54,60"
    (tmp_path / "01.l4.json").write_text(json.dumps(document, indent=2))
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    (diagnostic,) = error.value.diagnostics
    assert (diagnostic.line, diagnostic.path) == (9, "application.game.rule[0].origin_port")


def test_variables_follow_their_precedence(write_config, monkeypatch):
    """--var beats --var-file beats L4PLAN_VAR_ beats default; a bare reference keeps the type."""
    variables = 'variable "origin" {\n  default = "192.0.2.1"\n}\nvariable "port" {\n  default = 17000\n}\n'
    rule = ("tcp", "7000", "${var.origin}", "${var.port}", '    comment = "to ${var.origin}:${var.port}"\n')
    texts = (SITE, variables, app(rules=rule))

    def origin(**inputs):
        return load(write_config, *texts, inputs=VariableInputs(**inputs)).applications[0].rules[0]

    assert (origin().origin, origin().comment) == ("192.0.2.1", "to 192.0.2.1:17000")
    env = {"origin": "192.0.2.4", "port": "18000"}
    assert str(origin(environment=env).origin_port) == "18000"
    assert origin(environment=env, files={"origin": "192.0.2.3"}).origin == "192.0.2.3"
    assert origin(environment=env, files={"origin": "192.0.2.3"}, cli={"origin": "192.0.2.2"}).origin == "192.0.2.2"


def test_only_variable_references_are_evaluated(write_config):
    """Functions and other expressions are refused, not evaluated."""
    rule = ("tcp", "7000", '${upper("x")}', "1")
    assert errors(write_config, SITE, app(rules=rule)) == [
        '01.l4.hcl:6 application.game.rule[0].origin: "${upper("x")}" is not a variable reference'
    ]


def test_value_for_an_undeclared_variable_is_refused(write_config):
    """--var for a variable nobody declared is a mistake worth reporting."""
    assert "undeclared variable" in errors(write_config, SITE, app(), inputs=VariableInputs(cli={"nope": "1"}))[0]


def test_unknown_block_suggests_the_closest_name(write_config):
    """A typo in a block type gets a did-you-mean."""
    with pytest.raises(ConfigError) as error:
        load(write_config, SITE, app().replace("application", "aplication"))
    assert [(d.summary, d.detail) for d in error.value.diagnostics] == [
        ('unknown block "aplication"', 'Did you mean "application"?')
    ]


def test_missing_directory_files_is_a_clear_error(tmp_path):
    """A directory without configuration files says what to add."""
    with pytest.raises(ConfigError, match=r"no configuration files in .*\n  Add a \*\.l4\.hcl"):
        load_config(tmp_path)


def test_provider_and_backend_default_to_the_embedded_ones(write_config):
    """No provider or backend block: the local runtime and the local state file."""
    config = load(write_config, SITE, app())
    assert (config.provider.kind, config.provider.attributes["admin"]) == ("runtime", "unix:.l4plan/runtime.sock")
    assert config.backend.attributes == {"path": "l4plan.state.json"}
    config = load(write_config, SITE, app(), 'backend "local" {\n  path = "prod.state.json"\n}\n')
    assert config.backend.attributes == {"path": "prod.state.json"}


def test_the_runtime_provider_files_default_to_the_data_directory():
    """The schema's defaults (their one home) keep the runtime's files in DATA_DIR."""
    from l4plan.model import DATA_DIR, DEFAULT_PROVIDER

    assert DEFAULT_PROVIDER.attributes["admin"] == f"unix:{DATA_DIR}/runtime.sock"
    assert DEFAULT_PROVIDER.attributes["token_file"] == f"{DATA_DIR}/admin.token"


def test_a_declared_load_balancer_name_infers_load_balancer(write_config):
    """An origin naming a declared load balancer, with no origin_type, is that load balancer."""
    pool = 'load_balancer "pool" {\n  origin {\n    address = "192.0.2.10"\n  }\n}\n'
    config = load(write_config, SITE, pool, app(rules=("tcp", "7000", "pool", "1")))
    assert config.applications[0].rules[0].origin_type == "load_balancer"


@pytest.mark.parametrize("origin", ["192.168.1.300", "10.0.0", "1.2.3.4.5"])
def test_an_all_digit_origin_is_an_invalid_address(write_config, origin):
    """A name whose labels are all digits is a mistyped IP address, not a host name."""
    found = errors(write_config, SITE, app(rules=("tcp", "7000", origin, "1")))
    assert found == [f'01.l4.hcl:6 application.game.rule[0].origin: "{origin}" is not a valid IP address']


def test_an_all_digit_host_name_is_refused(write_config):
    """origin_type = "domain" does not take an all-digit name either."""
    rule = ("tcp", "7000", "10.0.0", "1", '    origin_type = "domain"\n')
    assert '"10.0.0" is not a valid host name' in errors(write_config, SITE, app(rules=rule))[0]


@pytest.mark.parametrize(
    "edge, problem",
    [
        ("80-", 'range "80-" has no last port'),
        ("-80", 'range "-80" has no first port'),
        ("80,,81", "an entry is empty (two commas in a row, or a comma at an end)"),
        ("80,81,", "an entry is empty (two commas in a row, or a comma at an end)"),
        ("+80", '"+80" is not a port number (digits 0-9 only)'),
        ("8e3", '"8e3" is not a port number (digits 0-9 only)'),
        ("٨٠", '"٨٠" is not a port number (digits 0-9 only)'),
    ],
)
def test_port_syntax_errors_say_what_is_wrong(write_config, edge, problem):
    """A malformed port list names its fault and the accepted forms, never a regular expression."""
    with pytest.raises(ConfigError) as error:
        load(write_config, SITE, app(rules=("tcp", edge, "192.0.2.1", "1")))
    [diagnostic] = error.value.diagnostics
    assert diagnostic.summary == f'"{edge}" is not a port specification: {problem}'
    assert diagnostic.detail.startswith('Ports are 1-65535, written "80", a list "80,81,82"')
    assert "\\d" not in str(diagnostic)


def test_an_attribute_set_twice_is_an_error(write_config):
    """As in Terraform, an attribute set twice in one block is an error naming both lines."""
    twice = app(extra='  domain = "other.example.com"\n')
    rule_twice = app(rules=("tcp", "7000", "192.0.2.1", "1", '    edge_port = "7001"\n'))
    assert errors(write_config, SITE, twice) == [
        '01.l4.hcl:3 application.game.domain: Attribute redefined: "domain" was already set at line 2'
    ]
    assert errors(write_config, SITE, rule_twice) == [
        '01.l4.hcl:8 application.game.rule[0].edge_port: Attribute redefined: "edge_port" was already set at line 5'
    ]


@pytest.mark.parametrize(
    "text, where, summary",
    [
        ('bogus "x" {\n  a = 1\n}\n', "01.l4.hcl:1 bogus", 'unknown block "bogus"'),
        ('site "other.com" {\n  plan = "enterprise"\n}\n', "01.l4.hcl:1 site.other.com", "a configuration declares exactly one site"),
        ('backend "local" {\n  path = "a"\n}\nbackend "local2" {\n}\n', "01.l4.hcl:4 backend.local2", 'at most 1 "backend" block'),
        ('application "a" {\n  domain = "a.example.com\n  rule {\n  }\n}\n', "01.l4.hcl:2 ", "invalid HCL syntax: this string is never closed"),
        ('application "a" {\n  domain = "a.example.com" # {\n  rule {\n  }\n\n\n', "01.l4.hcl:1 ", "invalid HCL syntax: this block is never closed"),
    ],
)
def test_errors_point_at_the_block_or_string_itself(write_config, text, where, summary):
    """An unknown, extra or unclosed block and an unterminated string are reported at their own line."""
    found = errors(write_config, SITE, text)
    assert f"{where}: {summary}" in found, found


def test_strings_and_lists_are_bounded(write_config):
    """An over-long comment or list is refused at validate, naming the attribute, without echoing it."""
    long_comment = app(rules=("tcp", "7000", "192.0.2.1", "1", f'    comment = "{"x" * 5000}"\n'))
    many = 'ip_access_rule "many" {\n  action = "deny"\n  priority = 1\n  sources = [%s]\n}\n' % ", ".join(
        f'"10.0.{i // 250}.{i % 250}"' for i in range(1001)
    )
    found = errors(write_config, SITE, long_comment, many)
    assert found == [
        '01.l4.hcl:8 application.game.rule[0].comment: "comment" is 5000 characters long, more than the 256 allowed',
        '02.l4.hcl:4 ip_access_rule.many.sources: "sources" has 1001 items, more than the 1000 allowed',
    ]


def test_an_overlong_line_is_refused_before_parsing(write_config):
    """A line of HCL longer than any value may be is refused with its number, before the parser sees it."""
    found = errors(write_config, SITE, app(extra=f'  # {"y" * 70000}\n'))
    assert found == ["01.l4.hcl:3 : line 3 is 70004 characters long, more than the 65536 allowed"]


def test_an_oversized_file_is_refused(write_config, monkeypatch):
    """A file over the size bound is refused by name and size, unread."""
    monkeypatch.setattr("l4plan.config.loader.MAX_FILE_BYTES", 100)
    found = errors(write_config, SITE + "#" * 200 + "\n")
    assert found == [
        "00.l4.hcl:0 : the file is 276 bytes, more than the 100 bytes a configuration or variable file may have"
    ]


def test_deeply_nested_json_is_one_error(write_config):
    """A *.l4.json nested past the stack is a diagnostic, not a RecursionError."""
    directory = write_config({"main.l4.json": '{"x": ' + "[" * 100000 + "]" * 100000 + "}"})
    with pytest.raises(ConfigError) as error:
        load_config(directory)
    assert [d.summary for d in error.value.diagnostics] == ["invalid JSON: nested too deeply"]


def test_a_rule_pointing_at_its_own_edge_port_is_refused(write_config):
    """A loopback origin on an edge port of the same protocol is the runtime itself."""
    found = errors(
        write_config,
        SITE,
        app(rules=(("tcp", "7000", "127.0.0.1", "7000"), ("udp", "7001", "127.0.0.1", "7000"))),
        app("other", rules=("tcp", "8000", "::1", "6990-7010")),
    )
    assert found == [
        "01.l4.hcl:7 application.game.rule[0].origin_port: origin 127.0.0.1:7000 is tcp edge port "
        "7000 of application.game rule tcp/7000: the runtime would connect to itself",
        "02.l4.hcl:7 application.other.rule[0].origin_port: origin ::1:7000 is tcp edge port "
        "7000 of application.game rule tcp/7000: the runtime would connect to itself",
    ]
