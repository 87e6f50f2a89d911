"""The provider interface (DESIGN §5): what turns a plan into reality.

A template method, as octodns's ``BaseProvider``: ``Provider`` owns ``read()``
and ``apply()``, checks settings and capabilities once, and leaves subclasses
only ``_read()`` and ``_apply()``. Providers are found by name through the
entry-point group ``l4plan.providers``; the engine never imports one.
"""

from abc import ABC, abstractmethod

from l4plan.model import rule_key


class ProviderError(Exception):
    """A provider could not do its work; the message says what and how to fix it."""


class OutcomeUnknown(ProviderError):
    """The target took the change but did not say whether it made it (it died
    answering); only reading it again tells."""


class Provider(ABC):
    """Base of every provider.

    Subclasses implement ``_read()`` and ``_apply(plan, desired)`` and declare
    what they can do as class constants. They must not modify ``desired`` or
    the plan, and their ``_apply`` must be all or nothing: on failure, raise
    ProviderError and leave the target as it was, so the state stays true.
    """

    #: Protocols the target can proxy.
    SUPPORTS = frozenset({"tcp", "udp"})
    #: Values of a rule's ``origin_type`` the target can reach.
    SUPPORTS_ORIGIN_TYPES = frozenset(
        {"ip", "domain", "object_storage", "load_balancer"}
    )
    #: Values of a rule's ``client_ip_passthrough`` the target can send.
    SUPPORTS_CLIENT_IP_PASSTHROUGH = frozenset(
        {"off", "proxy_protocol_v1", "proxy_protocol_v2", "simple_proxy_protocol"}
    )
    #: Address types ``read()`` reports; drift is looked for in these only.
    READS = frozenset({"application"})
    #: Names of the attributes its ``provider`` block accepts.
    SETTINGS: frozenset[str] = frozenset()

    @staticmethod
    def progress(line):
        """Where progress lines go (a runtime started, a node converged): the
        caller sets a function of one line; a provider never prints."""

    def __init__(self, name, settings, workdir):
        """``settings`` are the attributes of the ``provider`` block."""
        unknown = sorted(set(settings) - self.SETTINGS)
        if unknown:
            accepted = ", ".join(sorted(self.SETTINGS)) or "none"
            raise ProviderError(
                f'provider "{name}" has no setting "{unknown[0]}" '
                f"(it accepts: {accepted}); remove it from the provider block"
            )
        self.name = name
        self.settings = dict(settings)
        self.workdir = workdir

    def read(self):
        """The objects as the target runs them, ``{address: attributes}`` by address."""
        return dict(sorted(self._read().items()))

    def open_connections(self):
        """Live impact: ``{"APP/PROTOCOL/EDGE_PORT": open connections or sessions}``.

        Optional; a provider that cannot tell returns ``{}`` (the default).
        """
        return {}

    def apply(self, plan, desired, canary=()):
        """Make the target match ``desired``; returns identity data by address.

        ``canary`` names nodes that take the change first (providers with nodes)."""
        self._check_supports(desired)
        if canary:
            return self._apply_canary(plan, desired, tuple(canary))
        return self._apply(plan, desired)

    def _apply_canary(self, plan, desired, nodes):
        raise ProviderError(
            f'provider "{self.name}" has no nodes to go first: --canary is for provider "fleet"'
        )

    def _check_supports(self, desired):
        for address, attributes in sorted(desired.items()):
            for rule in attributes.get("rules", ()):
                self._check_rule(address, rule)

    def _check_rule(self, address, rule):
        where = f"{address} rule {rule_key(rule['protocol'], rule['edge_port'])}"
        checks = (
            ("protocol", self.SUPPORTS),
            ("origin_type", self.SUPPORTS_ORIGIN_TYPES),
            ("client_ip_passthrough", self.SUPPORTS_CLIENT_IP_PASSTHROUGH),
        )
        for attribute, supported in checks:
            if rule[attribute] not in supported:
                raise ProviderError(
                    f'{where}: provider "{self.name}" does not support '
                    f'{attribute} = "{rule[attribute]}" (it supports: '
                    f"{', '.join(sorted(supported))}); change the rule or the provider"
                )

    @abstractmethod
    def _read(self):
        """``{address: attributes}`` of what the target runs now."""

    @abstractmethod
    def _apply(self, plan, desired):
        """Make the target match ``desired`` all at once; return identity by address."""
