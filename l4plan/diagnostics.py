"""Diagnostics: what is wrong, where, and how to fix it.

Functions report problems as values (Terraform's ``diags``) and the CLI prints
them once, so every error of a run is shown together.
"""

from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding. ``summary`` says what is wrong, ``detail`` how to fix it."""

    summary: str
    detail: str = ""
    filename: str = ""
    line: int = 0
    column: int = 0
    path: str = ""
    severity: str = ERROR

    @property
    def where(self):
        place = ":".join(str(p) for p in (self.filename, self.line, self.column) if p)
        return ": ".join(p for p in (place, self.path) if p)

    def __str__(self):
        head = f"{self.severity.capitalize()}: "
        head += f"{self.where}: {self.summary}" if self.where else self.summary
        return f"{head}\n  {self.detail}" if self.detail else head

    def to_dict(self):
        return asdict(self)


class ConfigError(Exception):
    """A configuration that cannot be used; carries every diagnostic found."""

    def __init__(self, diagnostics):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def errors_of(diagnostics):
    return [d for d in diagnostics if d.severity == ERROR]


def report(diagnostics):
    """The JSON form of a run's diagnostics (validate --json, and any command's
    failure under --json): one shape for every reader."""
    errors = errors_of(diagnostics)
    return {
        "valid": not errors,
        "error_count": len(errors),
        "warning_count": len(diagnostics) - len(errors),
        "diagnostics": [d.to_dict() for d in diagnostics],
    }
