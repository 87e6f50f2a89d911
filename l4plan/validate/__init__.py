"""Validation: the config schema for structure, then every product rule in Python.

``validate_document`` returns the typed model and every diagnostic at once;
``load_config`` is the whole front of the pipeline (files → variables →
schema → rules → model) and raises ConfigError when anything is wrong. Each
block type has its validator module; ``across`` holds the rules that span
applications.
"""

from l4plan.config.loader import load_directory
from l4plan.config.variables import VariableInputs, resolve
from l4plan.diagnostics import ConfigError, errors_of
from l4plan.model import DEFAULT_BACKEND, DEFAULT_PROVIDER, Config
from l4plan.schema import check_structure
from l4plan.validate import across
from l4plan.validate.access_rules import check_ip_access_rule
from l4plan.validate.applications import check_application
from l4plan.validate.load_balancers import check_load_balancer
from l4plan.validate.report import Report
from l4plan.validate.site import check_site


def load_config(directory, inputs=VariableInputs()):
    """Load, resolve and validate a configuration directory into a Config."""
    document = resolve(load_directory(directory), inputs)
    config, diagnostics = validate_document(document)
    if errors_of(diagnostics):
        raise ConfigError(diagnostics)
    return config


def validate_document(document):
    """``(Config or None, diagnostics)`` for a resolved document."""
    diagnostics, broken = check_structure(document)
    report = Report(document, broken)
    config = _build(report)
    diagnostics = sorted(diagnostics + report.diagnostics, key=lambda d: (d.filename, d.line, d.column))
    return (None if errors_of(diagnostics) else config), diagnostics


def _build(report):
    """The model of the schema-valid blocks, every rule violation reported."""
    site = check_site(report)
    lbs = tuple(check_load_balancer(report, name, body) for name, body in report.blocks("load_balancer"))
    acl = tuple(check_ip_access_rule(report, name, body) for name, body in report.blocks("ip_access_rule"))
    lb_names = {lb.name for lb in lbs} | report.labels("load_balancer")
    apps = tuple(check_application(report, name, body, site, lb_names) for name, body in report.blocks("application"))
    across.check_unique_domains(report, apps)
    across.check_unique_edge_ports(report, apps)
    across.check_not_self_pointing(report, apps)
    return Config(
        site=site,
        applications=apps,
        load_balancers=lbs,
        ip_access_rules=tuple(sorted(acl, key=lambda r: (r.priority, r.name))),
        provider=report.settings("provider", DEFAULT_PROVIDER),
        backend=report.settings("backend", DEFAULT_BACKEND),
        locator=report.locate,
    )
