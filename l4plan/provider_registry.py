"""Finding providers by name through the entry-point group ``l4plan.providers``.

The engine knows providers only through this and the interface in
``l4plan.providers.base``; a provider package registers itself with
``[project.entry-points."l4plan.providers"] NAME = "module:Class"``.
"""

from l4plan.plugins import plugin_class
from l4plan.providers.base import Provider, ProviderError

GROUP = "l4plan.providers"


def get_provider(name, settings, workdir):
    """An instance of the provider ``name``, made from its block's ``settings``."""
    return provider_class(name)(name, settings, workdir)


def provider_class(name):
    """The Provider subclass registered as ``name``, or ProviderError naming those installed."""
    return plugin_class(GROUP, name, "provider", Provider, ProviderError)
