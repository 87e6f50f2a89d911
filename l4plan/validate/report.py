"""What every validator shares: the document, its schema-broken parts, and
the diagnostics found so far."""

from l4plan.model import Location, Settings


class Report:
    """The blocks a validator may look at, and where it reports a violation."""

    def __init__(self, document, broken):
        self.document = document
        self.broken = broken  # paths the schema already refused
        self.diagnostics = []

    def error(self, path, summary, detail):
        self.diagnostics.append(self.document.diagnostic(path, summary, detail))

    def blocks(self, block_type):
        """``(label, body)`` of the schema-valid blocks of one type."""
        if (block_type,) in self.broken:
            return []
        blocks = self.document.data.get(block_type) or {}
        return [(k, v) for k, v in blocks.items() if (block_type, k) not in self.broken]

    def labels(self, block_type):
        """The labels of every block of one type, schema-valid or not (so that a
        reference to a broken block is not reported a second time)."""
        blocks = self.document.data.get(block_type)
        return set(blocks) if isinstance(blocks, dict) else set()

    def locate(self, address):
        """The Location of a block by address, looked up only when asked."""
        position = self.document.positions.get(tuple(address.split(".", 1)))
        return Location(*position[:2]) if position else None

    def settings(self, block_type, default):
        """The provider or backend block, on top of its defaults when of the default kind."""
        blocks = self.blocks(block_type)
        if not blocks:
            return default
        kind, attributes = blocks[0]
        base = default.attributes if kind == default.kind else {}
        return Settings(kind, {**base, **attributes})
