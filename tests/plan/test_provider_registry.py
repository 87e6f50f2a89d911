"""Providers: the interface's template methods and discovery by entry point."""

import pytest
from plan_scenarios import game, resources, rule

from l4plan.diff import diff
from l4plan.provider_registry import get_provider, provider_class
from l4plan.providers.base import Provider, ProviderError

FAKE_MODULE = """
from l4plan.providers.base import Provider


class FakeProvider(Provider):
    SETTINGS = frozenset({"endpoint"})

    def _read(self):
        return {}

    def _apply(self, plan, desired):
        return {address: {"id": address} for address in desired}


class NotAProvider:
    pass

"""


def _install(tmp_path, monkeypatch, entry_points):
    """A distribution on sys.path that registers ``entry_points`` as providers."""
    (tmp_path / "fake_l4plan_provider.py").write_text(FAKE_MODULE)
    (tmp_path / "broken_l4plan_provider.py").write_text(
        "raise ImportError('no twisted here')\n"
    )
    info = tmp_path / "fake_l4plan_provider-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-l4plan-provider\nVersion: 1.0\n"
    )
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[l4plan.providers]\n{lines}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def installed(tmp_path, monkeypatch):
    _install(
        tmp_path,
        monkeypatch,
        {
            "fake": "fake_l4plan_provider:FakeProvider",
            "odd": "fake_l4plan_provider:NotAProvider",
            "broken": "broken_l4plan_provider:Provider",
        },
    )


def test_provider_is_found_by_entry_point(installed, tmp_path):
    """get_provider builds the class registered under the name, with its settings."""
    provider = get_provider("fake", {"endpoint": "x"}, tmp_path)
    assert type(provider).__name__ == "FakeProvider" and isinstance(provider, Provider)
    assert (provider.name, provider.settings, provider.workdir) == (
        "fake",
        {"endpoint": "x"},
        tmp_path,
    )


def test_unknown_provider_names_those_installed(installed, tmp_path):
    """An unknown name is an error that lists the installed providers and the fix."""
    with pytest.raises(ProviderError) as caught:
        get_provider("haproxy", {}, tmp_path)
    assert str(caught.value).startswith(
        'Unknown provider "haproxy" (installed providers: '
    )
    assert "broken, fake, fleet, odd, runtime" in str(caught.value)
    assert str(caught.value).endswith(
        "); fix the provider block, or install the package that provides it"
    )


@pytest.mark.parametrize(
    "name, message",
    [
        # a registered object that is not a Provider subclass is named as such
        ("odd", 'Provider "odd" (fake_l4plan_provider:NotAProvider) is not a subclass of l4plan.providers.base.Provider'),
        # an import error while loading a provider becomes a ProviderError naming it
        ("broken", 'Provider "broken" (broken_l4plan_provider:Provider) failed to load: '
         "no twisted here; reinstall the package that provides it"),
    ],
)
def test_a_provider_that_cannot_be_used_is_named_with_the_fix(installed, name, message):
    with pytest.raises(ProviderError) as caught:
        provider_class(name)
    assert str(caught.value) == message


class MemoryProvider(Provider):
    """A provider kept in memory, as a test of the template methods."""

    SUPPORTS = frozenset({"tcp"})
    SETTINGS = frozenset({"path"})

    def __init__(self, *args):
        super().__init__(*args)
        self.running = {}

    def _read(self):
        return dict(reversed(list(self.running.items())))

    def _apply(self, plan, desired):
        self.running = dict(desired)
        return {address: {"generation": 1} for address in desired}


def test_unknown_setting_is_refused():
    """A provider block attribute the provider does not take is an error naming both."""
    with pytest.raises(ProviderError) as caught:
        MemoryProvider("memory", {"path": "x", "colour": "red"}, ".")
    assert str(caught.value) == (
        'provider "memory" has no setting "colour" (it accepts: path); '
        "remove it from the provider block"
    )


def test_apply_then_read_sorted_by_address():
    """apply hands desired to _apply; read returns _read's result sorted by address."""
    provider = MemoryProvider("memory", {}, ".")
    desired = resources(
        game(name="b", rules=(rule("tcp", "80", "81"),)),
        game(name="a", rules=(rule("tcp", "90", "91"),)),
    )
    identity = provider.apply(diff(desired, {}), desired)
    assert identity == {
        "application.a": {"generation": 1},
        "application.b": {"generation": 1},
    }
    assert list(provider.read()) == ["application.a", "application.b"]


def test_unsupported_protocol_is_refused_before_apply():
    """A rule the provider cannot run is refused, naming the rule, and nothing is applied."""
    provider = MemoryProvider("memory", {}, ".")
    desired = resources(game())
    with pytest.raises(ProviderError) as caught:
        provider.apply(diff(desired, {}), desired)
    assert str(caught.value) == (
        'application.game rule udp/7000: provider "memory" does not support '
        'protocol = "udp" (it supports: tcp); change the rule or the provider'
    )
    assert provider.running == {}


def test_subclass_must_implement_read_and_apply():
    """A provider missing _read or _apply cannot be instantiated."""

    class Incomplete(Provider):
        def _read(self):
            return {}

    with pytest.raises(TypeError, match="_apply"):
        Incomplete("incomplete", {}, ".")
