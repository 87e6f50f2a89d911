"""Classes found by name through an entry-point group: providers and state backends.

A package registers one with ``[project.entry-points."GROUP"] NAME = "module:Class"``;
the engine knows it only through its base class.
"""

from importlib.metadata import entry_points


def plugin_class(group, name, noun, base, error):
    """The subclass of ``base`` registered as ``name`` in ``group``; else
    ``error`` (an exception class) saying what is installed and what to do."""
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        installed = ", ".join(sorted(found)) or "none"
        raise error(
            f'Unknown {noun} "{name}" (installed {noun}s: {installed}); '
            f"fix the {noun} block, or install the package that provides it"
        )
    entry_point = found[name]
    label = f'{noun.capitalize()} "{entry_point.name}" ({entry_point.value})'
    try:
        cls = entry_point.load()
    except Exception as failure:
        raise error(f"{label} failed to load: {failure}; reinstall the package that provides it") from failure
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise error(f"{label} is not a subclass of {base.__module__}.{base.__qualname__}")
    return cls
