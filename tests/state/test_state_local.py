"""The local backend: round trips, serial and lineage, backups, and bad files."""

import json
import os
import re
import uuid
from importlib import resources

import pytest

from l4plan.files import backup_path
from l4plan.state import CorruptState, NewerStateFormat, Resource, StaleState, State, StateError
from l4plan.state.model import NAME_PATTERNS
from tests.state_files import read_state, write_state


def app(name, **attributes):
    return Resource.at(
        f"application.{name}", {"domain": f"{name}.example.com", **attributes}
    )


def first_write(path, *resources):
    return write_state(path, read_state(path).with_resources(resources))


def test_missing_file_reads_as_empty_state(state_path):
    """No file yet means nothing applied yet."""
    assert read_state(state_path) == State.empty()


def test_round_trip(state_path):
    """What is written is what is read back, lineage and all."""
    written = first_write(
        state_path, app("game", rules=[{"port": "7000"}]), app("chat")
    )
    assert read_state(state_path) == written
    assert written.serial == 1
    assert uuid.UUID(written.lineage).version == 4


def test_file_layout(state_path):
    """The file has the documented top-level fields and resources by address."""
    written = write_state(state_path, State.empty().with_resources([app("game")]))
    document = json.loads(state_path.read_text())
    assert list(document) == [
        "format_version",
        "lineage",
        "serial",
        "l4plan_version",
        "resources",
    ]
    assert document["resources"] == {
        "application.game": {
            "type": "application",
            "name": "game",
            "attributes": {"domain": "game.example.com"},
            "identity": {},
        }
    }
    assert (document["lineage"], document["serial"]) == (written.lineage, 1)


def test_identical_resources_keep_serial_and_file(state_path):
    """Writing the same resources again changes nothing, not even the file's mtime."""
    written = first_write(state_path, app("game"))
    before = os.stat(state_path)
    again = write_state(
        state_path, read_state(state_path).with_resources([app("game")])
    )
    after = os.stat(state_path)
    assert again == written
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not os.path.exists(backup_path(state_path))


def test_empty_state_is_not_written(state_path):
    """An empty state over a missing file writes nothing."""
    write_state(state_path, State.empty())
    assert not state_path.exists()


def test_change_bumps_serial_and_keeps_lineage(state_path):
    """Each change moves the serial by one; the lineage never changes."""
    first = first_write(state_path, app("game"))
    second = write_state(state_path, first.with_resources([app("game", ipv6=True)]))
    third = write_state(state_path, second.without("application.game"))
    assert [first.serial, second.serial, third.serial] == [1, 2, 3]
    assert first.lineage == second.lineage == third.lineage
    assert read_state(state_path) == third


def test_previous_version_kept_as_backup(state_path):
    """The version before the last write is in .backup, byte for byte."""
    first_write(state_path, app("game"))
    old_bytes = state_path.read_bytes()
    write_state(state_path, read_state(state_path).with_resources([app("chat")]))
    with open(backup_path(state_path), "rb") as backup:
        assert backup.read() == old_bytes
    assert list(read_state(backup_path(state_path)).resources) == ["application.game"]


def test_no_temporary_files_left(state_path):
    """After writes the directory holds the state and its backup only."""
    first_write(state_path, app("game"))
    write_state(state_path, read_state(state_path).with_resources([app("chat")]))
    assert sorted(os.listdir(state_path.parent)) == [
        "l4plan.state.json",
        "l4plan.state.json.backup",
    ]


def test_new_file_is_private_and_mode_is_kept(state_path):
    """A new state file is 0600; a mode the user chose survives rewrites."""
    first_write(state_path, app("game"))
    assert os.stat(state_path).st_mode & 0o777 == 0o600
    os.chmod(state_path, 0o640)
    write_state(state_path, read_state(state_path).with_resources([app("chat")]))
    assert os.stat(state_path).st_mode & 0o777 == 0o640


def test_stale_serial_is_refused(state_path):
    """A state read before another write landed is not written over it."""
    base = first_write(state_path, app("game"))
    write_state(state_path, base.with_resources([app("chat")]))
    content = state_path.read_bytes()
    with pytest.raises(StaleState) as caught:
        write_state(state_path, base.with_resources([app("arena")]))
    assert str(caught.value) == (
        f"{state_path} changed since it was read (serial 2 stored, 2 being "
        "written): another l4plan run wrote it, so nothing was written; run the "
        "command again"
    )
    assert state_path.read_bytes() == content


def test_other_lineage_is_refused(state_path):
    """A state of another lineage is never written over this one."""
    first_write(state_path, app("game"))
    foreign = State(lineage=str(uuid.uuid4()), serial=5).with_resources([app("chat")])
    with pytest.raises(StaleState, match="it belongs to another state"):
        write_state(state_path, foreign)


def corrupt(path, text, *, backup=False):
    """Write ``text`` as the state file, with a valid backup beside it if asked."""
    if backup:
        first_write(path, app("game"))
        os.replace(path, backup_path(path))
    path.write_text(text)
    return path.read_bytes()


def assert_refused(path, content, error_type, message):
    with pytest.raises(error_type) as caught:
        read_state(path)
    assert str(caught.value) == message
    with pytest.raises(error_type):
        write_state(path, State.empty().with_resources([app("chat")]))
    assert path.read_bytes() == content


def test_bad_json_names_file_line_and_backup(state_path):
    """Broken JSON: the file, the line and column, and how to restore the backup."""
    content = corrupt(state_path, '{\n  "serial": 1,\n  oops\n}\n', backup=True)
    assert_refused(
        state_path,
        content,
        CorruptState,
        f"{state_path} is not a valid state file: bad JSON at line 3, column 3: "
        "Expecting property name enclosed in double quotes; restore the previous "
        f"version (serial 1) with: cp {state_path}.backup {state_path}, or repair "
        "the file by hand",
    )


def test_empty_file_is_corrupt(state_path):
    """A zero-byte file is not an empty state: it is a broken one."""
    content = corrupt(state_path, "")
    assert_refused(
        state_path,
        content,
        CorruptState,
        f"{state_path} is not a valid state file: it is empty; its backup "
        f"{state_path}.backup does not exist, so repair the file by hand or "
        "restore it from your own copy",
    )


def test_not_utf8_is_corrupt(state_path):
    """Bytes that are not UTF-8 are reported with their offset."""
    state_path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(CorruptState, match=r"not UTF-8 text \(byte 7\)"):
        read_state(state_path)


def valid_document():
    return {
        "format_version": 1,
        "lineage": str(uuid.uuid4()),
        "serial": 1,
        "l4plan_version": "0.1.0",
        "resources": {
            "application.game": {
                "type": "application",
                "name": "game",
                "attributes": {},
                "identity": {},
            }
        },
    }


def test_schema_violation_names_the_place(state_path):
    """A schema violation says where in the document and what is wrong."""
    document = valid_document()
    document["serial"] = "one"
    del document["resources"]["application.game"]["identity"]
    content = corrupt(state_path, json.dumps(document))
    assert_refused(
        state_path,
        content,
        CorruptState,
        f"{state_path} is not a valid state file: at ['resources']"
        "['application.game']: 'identity' is a required property; at ['serial']: "
        "'one' is not of type 'integer'; its backup "
        f"{state_path}.backup does not exist, so repair the file by hand or "
        "restore it from your own copy",
    )


def test_resource_under_another_address_is_corrupt(state_path):
    """The key of a resource must be its own TYPE.NAME."""
    document = valid_document()
    document["resources"]["application.other"] = document["resources"][
        "application.game"
    ]
    content = corrupt(state_path, json.dumps(document))
    assert_refused(
        state_path,
        content,
        CorruptState,
        f"{state_path} is not a valid state file: resources['application.other'] "
        f"holds application.game; its backup {state_path}.backup does not exist, "
        "so repair the file by hand or restore it from your own copy",
    )


def test_many_schema_errors_are_capped(state_path):
    """A badly broken file lists five problems and counts the rest."""
    document = {
        "format_version": 1,
        "serial": -1,
        "lineage": "x",
        "l4plan_version": "",
        "junk": 1,
        "resources": {"bad": 1, "worse": 2},
    }
    corrupt(state_path, json.dumps(document))
    with pytest.raises(CorruptState, match=r"; and 3 more; its backup .* does not exist, so repair"):
        read_state(state_path)


def test_newer_format_asks_for_upgrade(state_path):
    """A file from a newer l4plan says which version wrote it and to upgrade."""
    document = valid_document()
    document.update(format_version=2, l4plan_version="9.0.0", new_field=True)
    content = corrupt(state_path, json.dumps(document))
    assert_refused(
        state_path,
        content,
        NewerStateFormat,
        f"{state_path} has state format 2, written by l4plan 9.0.0; this l4plan "
        "0.1.0 reads format 1 only: upgrade l4plan to 9.0.0 or later",
    )


def test_newer_format_without_a_version_names_no_version(state_path):
    """A newer file that does not say who wrote it reads as "a newer l4plan"."""
    document = valid_document()
    document.update(format_version=2)
    del document["l4plan_version"]
    content = corrupt(state_path, json.dumps(document))
    assert_refused(
        state_path,
        content,
        NewerStateFormat,
        f"{state_path} has state format 2, written by a newer l4plan; this l4plan "
        "0.1.0 reads format 1 only: upgrade l4plan to a version that reads it",
    )


def test_schema_address_patterns_match_python():
    """The schema and parse_address accept and refuse the same addresses."""
    schema = json.loads(
        resources.files("l4plan.schemas").joinpath("state.schema.json").read_text()
    )
    patterns = [p["pattern"] for p in schema["$defs"]["address"]["anyOf"]]
    samples = [
        "application.game",
        "application.g-1_x",
        "application.Game",
        "application.1a",
        "ip_access_rule.block",
        "load_balancer.pool",
        "site.example.com",
        "site.a",
        "site.-a.com",
        "site.a..b",
        "site." + "a" * 64,
        "server.x",
        "application." + "a" * 64,
    ]
    for sample in samples:
        kind, _, name = sample.partition(".")
        in_python = kind in NAME_PATTERNS and bool(NAME_PATTERNS[kind].fullmatch(name))
        in_schema = any(re.search(p, sample) for p in patterns)
        assert in_python == in_schema, sample


def test_failed_write_keeps_old_state_and_cleans_up(state_path, monkeypatch):
    """A write that fails before its rename leaves the old file and no temporaries."""
    first_write(state_path, app("game"))
    content = state_path.read_bytes()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("l4plan.state.local.os.fsync", disk_full)
    with pytest.raises(StateError) as caught:
        write_state(state_path, read_state(state_path).with_resources([app("chat")]))
    assert str(caught.value) == (
        f"cannot write {state_path}: No space left on device; the previous state "
        "is unchanged"
    )
    monkeypatch.undo()
    assert state_path.read_bytes() == content
    assert os.listdir(state_path.parent) == ["l4plan.state.json"]


def test_backup_is_copied_where_hard_links_fail(state_path, monkeypatch):
    """On a file system without hard links the backup is a copy of the old file."""
    first_write(state_path, app("game"))
    content = state_path.read_bytes()

    def no_links(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("l4plan.state.local.os.link", no_links)
    write_state(state_path, read_state(state_path).with_resources([app("chat")]))
    with open(backup_path(state_path), "rb") as backup:
        assert backup.read() == content
    assert sorted(os.listdir(state_path.parent)) == [
        "l4plan.state.json",
        "l4plan.state.json.backup",
    ]


def test_corrupt_backup_is_not_offered(state_path):
    """When the backup is broken too, the message says so instead of offering it."""
    corrupt(state_path, "{")
    with open(backup_path(state_path), "w") as backup:
        backup.write("not json")
    with pytest.raises(CorruptState) as caught:
        read_state(state_path)
    assert str(caught.value).endswith(
        f"its backup {state_path}.backup is not a valid state either, so repair "
        "the file by hand or restore it from your own copy"
    )


def test_temporaries_of_a_killed_writer_are_removed(state_path):
    """A write, made under the lock, removes temporary files a killed writer left."""
    write_state(state_path, State.empty().with_resources([app("game")]))
    leftovers = [
        state_path.parent / ".l4plan.state.json.abc123.tmp",
        state_path.parent / ".l4plan.state.json.backup.def456.tmp",
    ]
    for leftover in leftovers:
        leftover.write_text("half")
    other = state_path.parent / ".other.json.abc.tmp"
    other.write_text("not ours")
    write_state(state_path, read_state(state_path).with_resources([app("chat")]))
    assert not any(p.exists() for p in leftovers)
    assert other.exists()


@pytest.mark.parametrize(
    "text, why",
    [
        ("[" * 100000 + "]" * 100000, "bad JSON: nested too deeply"),
        ('{"resources": {}, "resources": {}}', "bad JSON: the key 'resources' appears twice in one object"),
    ],
)
def test_deep_or_duplicated_json_is_corrupt(state_path, text, why):
    """A state nested past the stack or with a key twice is refused, never a traceback or the last key."""
    corrupt(state_path, text)
    with pytest.raises(CorruptState, match=f"is not a valid state file: {why}"):
        read_state(state_path)
