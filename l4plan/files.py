"""Files replaced atomically: at every instant the path names a complete file.

The new content goes to a temporary file in the same directory, is flushed and
fsynced, and is renamed over the old one; the directory is fsynced after, so
the rename itself survives a crash. State files and saved plans use it.
"""

import os
import shutil
import tempfile
import uuid


def backup_path(path):
    """Where the previous version of ``path`` is kept."""
    return f"{os.fspath(path)}.backup"


def write_atomically(path, data, keep_backup=False):
    """Replace the file at ``path`` by the bytes ``data``.

    With ``keep_backup`` the old file is first linked (or copied) to
    ``.backup``. A new file is created with mode 0600; an existing file keeps
    its mode.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(path, temporary)
        if keep_backup:
            _keep_backup(path)
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise
    _fsync_directory(directory)


def unique_keys(pairs):
    """A ``json`` ``object_pairs_hook``: the object, or ValueError naming a key
    given twice (``json.loads`` alone keeps the last one silently)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return result


def remove_temporaries(path):
    """Remove the temporary files ``write_atomically`` makes for ``path`` (and
    its backup); only for a caller that knows no other writer is at work."""
    directory, name = os.path.split(os.path.abspath(path))
    for entry in os.listdir(directory):
        if entry.startswith(f".{name}.") and entry.endswith(".tmp"):
            _remove_quietly(os.path.join(directory, entry))


def _keep_mode(path, temporary):
    try:
        os.chmod(temporary, os.stat(path).st_mode & 0o7777)
    except FileNotFoundError:
        pass


def _keep_backup(path):
    """Make ``.backup`` the current file, itself by an atomic rename."""
    backup = backup_path(path)
    directory, name = os.path.split(backup)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        _link_or_copy(path, temporary)
        os.replace(temporary, backup)
    except FileNotFoundError:
        return
    except BaseException:
        _remove_quietly(temporary)
        raise


def _link_or_copy(source, destination):
    """Hard link where the file system allows it; else a synced copy."""
    try:
        os.link(source, destination)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copy2(source, destination)
        with open(destination, "rb+") as f:
            os.fsync(f.fileno())


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
