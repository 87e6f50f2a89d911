"""The raw configuration document and where each part of it was written.

Both file formats load into the same shape, the one ``*.l4.json`` files are
written in (as ``.tf.json`` mirrors HCL): ``{block_type: {label: body}}`` at
the top, nested ``rule`` and ``origin`` blocks as lists, ``lifecycle`` and
``health_check`` as objects. ``positions`` maps a path inside that document,
as a tuple of keys and indexes, to ``(filename, line, column)``.
"""

from l4plan.diagnostics import Diagnostic

#: Nested blocks that may appear several times in their parent.
REPEATED_BLOCKS = frozenset({"rule", "origin"})
#: Nested blocks that appear at most once.
SINGLE_BLOCKS = frozenset({"lifecycle", "health_check"})


class Document:
    """Data, and positions found only when first asked for.

    Positions are needed only to point at a problem, so a format whose
    positions cost more than its values (JSON) passes ``sources``: functions
    returning position dicts, merged in order, the first place of a path
    winning.
    """

    def __init__(self, data=None, positions=None, sources=()):
        self.data = {} if data is None else data
        self._positions = positions
        self._sources = list(sources)

    @property
    def positions(self):
        if self._positions is None:
            self._positions = {}
            for source in self._sources:
                for path, position in source().items():
                    self._positions.setdefault(path, position)
        return self._positions

    def locate(self, path):
        """The position of ``path``, or of its nearest located parent."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return next(iter(self.positions.values()), ("", 0, 0))

    def diagnostic(self, path, summary, detail=""):
        """A diagnostic pointing at ``path``."""
        filename, line, column = self.locate(path)
        return Diagnostic(summary, detail, filename, line, column, format_path(path))


def format_path(path):
    """``("application", "game", "rule", 0, "origin")`` → ``application.game.rule[0].origin``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
