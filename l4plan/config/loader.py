"""Load a configuration directory: every ``*.l4.hcl`` and ``*.l4.json``, in name order."""

from pathlib import Path

from l4plan.config.document import Document
from l4plan.config.hcl_file import load_hcl
from l4plan.config.json_file import load_json
from l4plan.diagnostics import ConfigError, Diagnostic

LOADERS = {".l4.hcl": load_hcl, ".l4.json": load_json}
#: The largest file read: 1,000 applications of 30 rules take about 7 MB in HCL.
MAX_FILE_BYTES = 16 * 1024 * 1024


def config_files(directory):
    """The configuration files of ``directory`` (not recursive), in name order."""
    return sorted(
        p for p in Path(directory).iterdir() if p.is_file() and _suffix(p.name) in LOADERS
    )


def _suffix(name):
    return next((s for s in LOADERS if name.endswith(s)), None)


def load_file(path, display_name=None):
    """Read one file into a Document; syntax errors raise ConfigError."""
    name = display_name or str(path)
    return LOADERS[_suffix(Path(path).name)](read_text(path, name), name)


def read_text(path, name):
    """The UTF-8 text of a configuration or variable file, a leading byte-order
    mark dropped (editors on Windows write one); anything else is a ConfigError."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError([Diagnostic(f"the file is {size} bytes, more than the {MAX_FILE_BYTES} bytes a configuration or variable file may have", "Split it into several files, or remove what does not belong in it.", name)])
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError([Diagnostic(f"cannot read the file: {error.strerror}", "Check the path and its permissions.", name)]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            [
                Diagnostic(
                    f"the file is not UTF-8 text (byte {error.start} is 0x{raw[error.start]:02x})",
                    "Save it as UTF-8 text; binary files do not belong in a configuration.",
                    name,
                    line,
                )
            ]
        ) from None


def load_directory(directory):
    """Merge every file of ``directory`` into one Document.

    Syntax errors of all files are reported together; a block name declared
    in two places is an error naming both.
    """
    files = config_files(directory)
    if not files:
        raise ConfigError(
            [
                Diagnostic(
                    f"no configuration files in {directory}",
                    "Add a *.l4.hcl or *.l4.json file, or point -C at the configuration directory.",
                    str(directory),
                )
            ]
        )
    documents: list = []
    diagnostics: list = []
    for path in files:
        try:
            documents.append(load_file(path, _display(path)))
        except ConfigError as error:
            diagnostics.extend(error.diagnostics)
    merged = Document(sources=[lambda d=d: d.positions for d in documents])
    for document in documents:
        _merge(merged, document, diagnostics)
    if diagnostics:
        raise ConfigError(diagnostics)
    return merged


def _display(path):
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _merge(merged, document, diagnostics):
    for block_type, blocks in document.data.items():
        target = merged.data.setdefault(block_type, {})
        if not isinstance(blocks, dict) or not isinstance(target, dict):
            target = merged.data[block_type] = blocks
            continue
        for label, body in blocks.items():
            if label in target:
                first = merged.positions.get((block_type, label))
                diagnostics.append(
                    document.diagnostic(
                        (block_type, label),
                        f'{block_type} "{label}" is declared twice; first at {first[0]}:{first[1]}',
                        "Give each block its own name, or merge the two.",
                    )
                )
                continue
            target[label] = body
