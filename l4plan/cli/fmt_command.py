"""``l4plan fmt``: rewrite HCL configuration files in canonical layout."""

from pathlib import Path

import click

from l4plan.fmt import FormatError, format_hcl, hcl_files, unified_diff

CHANGES_EXIT = 3  # --check found files to reformat, as terraform fmt -check


@click.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 3 when a file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of the changes.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def fmt(check, show_diff, paths):
    """Rewrite *.l4.hcl files in the canonical layout.

    PATHS are files or directories (default: the current directory); a
    directory means every *.l4.hcl file in it, not recursively. Files that
    change are rewritten in place and listed. *.l4.json files are left alone.

    Exits 0 when done, 1 when a file is malformed (it is left untouched),
    and with --check 3 when a file would change.
    """
    failed = changed = False
    for path in hcl_files(paths or [Path(".")]):
        try:
            changed |= _format_file(path, check, show_diff)
        except FormatError as error:
            failed = True
            click.echo(click.style("Error", fg="red", bold=True) + f": {error}", err=True)
    raise SystemExit(1 if failed else CHANGES_EXIT if check and changed else 0)


def _format_file(path, check, show_diff):
    """Format one file; True when it changes (or would, with --check)."""
    before = _read(path)
    after = format_hcl(before, str(path))
    if after == before:
        return False
    click.echo(str(path))
    if show_diff:
        click.echo(unified_diff(path, before, after), nl=False)
    if not check:
        _write(path, after)
    return True


def _read(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FormatError(str(path), None, None, "not UTF-8 text") from None
    except OSError as error:
        raise FormatError(str(path), None, None, f"cannot read: {error.strerror}") from None


def _write(path, text):
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise FormatError(str(path), None, None, f"cannot write: {error.strerror}") from None


COMMANDS = (fmt,)
