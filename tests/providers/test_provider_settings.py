"""The providers' parts that need no server: what plan says about fleet nodes
that drift, and the runtime provider's TLS settings."""

import pytest

from l4plan.providers.base import ProviderError
from l4plan.providers.fleet import FleetProvider, drift_lines
from l4plan.providers.runtime import RuntimeProvider


def report(revision, status="ok", error=None, digest="h"):
    return {"revision": revision, "status": status, "error": error, "hash": digest}


def test_nodes_in_step_say_nothing_and_the_others_say_how_they_drift():
    nodes = {
        "a": report(9),
        "b": report(7),
        "c": report(9, "error", "tcp 127.0.0.3:7000: [Errno 98] Address already in use"),
        "d": report(9, digest="other"),
    }
    assert drift_lines(nodes, 9, "h") == [
        "warning: node b is behind: it serves revision 7 of 9",
        "warning: node c is in error at revision 9: tcp 127.0.0.3:7000: [Errno 98] Address already in use",
        "warning: node d serves another document than the desired one (hash other)",
    ]


def test_a_missing_tls_file_of_the_runtime_provider_is_named(tmp_path):
    with pytest.raises(ProviderError) as caught:
        RuntimeProvider("runtime", {"admin": "https://127.0.0.1:9901", "ca_file": "missing.pem"}, tmp_path)
    assert str(caught.value) == (
        f"cannot load the TLS files {tmp_path}/missing.pem: No such file or directory; "
        "fix ca_file, cert_file or key_file in the provider block"
    )


def test_a_missing_tls_file_of_the_fleet_provider_is_named(tmp_path):
    with pytest.raises(ProviderError) as caught:
        FleetProvider("fleet", {"endpoints": ["https://127.0.0.1:2379"], "ca_file": "missing.pem"}, tmp_path)
    assert str(caught.value) == (
        f"cannot load the TLS files {tmp_path}/missing.pem: No such file or directory; "
        "fix ca_file, cert_file or key_file in the provider block"
    )


def test_canary_is_for_a_provider_with_nodes(tmp_path):
    provider = RuntimeProvider("runtime", {}, tmp_path)
    with pytest.raises(ProviderError) as caught:
        provider.apply(None, {}, canary=("n2",))
    assert str(caught.value) == 'provider "runtime" has no nodes to go first: --canary is for provider "fleet"'
