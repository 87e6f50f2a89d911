"""Finding providers by name through the entry-point group ``l4plan.providers``.

The engine knows providers only through this and the interface in
``l4plan.providers.base``; a provider package registers itself with
``[project.entry-points."l4plan.providers"] NAME = "module:Class"``.
"""

from importlib.metadata import entry_points

from l4plan.providers.base import Provider, ProviderError

GROUP = "l4plan.providers"


def get_provider(name, settings, workdir):
    """An instance of the provider ``name``, made from its block's ``settings``."""
    return provider_class(name)(name, settings, workdir)


def provider_class(name):
    """The Provider subclass registered as ``name``, or ProviderError naming those installed."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        installed = ", ".join(sorted(found)) or "none"
        raise ProviderError(
            f'Unknown provider "{name}" (installed providers: {installed}); '
            f"fix the provider block, or install the package that provides it"
        )
    return _load(found[name])


def _load(entry_point):
    try:
        cls = entry_point.load()
    except Exception as error:
        raise ProviderError(
            f'Provider "{entry_point.name}" ({entry_point.value}) failed to load: '
            f"{error}; reinstall the package that provides it"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ProviderError(
            f'Provider "{entry_point.name}" ({entry_point.value}) is not a subclass '
            "of l4plan.providers.base.Provider"
        )
    return cls
