"""The raw configuration document and where each part of it was written.

Both file formats load into the same shape, the one ``*.l4.json`` files are
written in (as ``.tf.json`` mirrors HCL): ``{block_type: {label: body}}`` at
the top, nested ``rule`` and ``origin`` blocks as lists, ``lifecycle`` and
``health_check`` as objects. ``positions`` maps a path inside that document,
as a tuple of keys and indexes, to ``(filename, line, column)``.
"""

from dataclasses import dataclass, field

from l4plan.diagnostics import Diagnostic

#: Nested blocks that may appear several times in their parent.
REPEATED_BLOCKS = frozenset({"rule", "origin"})
#: Nested blocks that appear at most once.
SINGLE_BLOCKS = frozenset({"lifecycle", "health_check"})


@dataclass
class Document:
    data: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)

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
