"""Where two objects differ, path by path: the one module that uses deepdiff.

A path is the list of keys and list indices from the object's top down to
the value that differs: ``["origins", 1, "weight"]``. Lists are aligned as
sequences (deepdiff's difflib pass), so one origin inserted or removed is one
change, not a shift of every origin after it. That pass needs hashable
elements, so each object inside a list stands in as its canonical JSON text;
an object replaced by another in the same place is then diffed inside, which
gives ``["origins", 1, "weight"]`` rather than the whole origin twice.
"""

import json

from deepdiff import DeepDiff
from deepdiff.helper import notpresent


class _Block(str):
    """An object inside a list, as its canonical JSON text, carrying the object."""

    value: dict

    def __new__(cls, value):
        block = super().__new__(cls, json.dumps(value, sort_keys=True))
        block.value = value
        return block


def changed_paths(before, after, prefix=()):
    """``(path, before, after)`` of every difference, sorted by path.

    A side without a value at the path gives None there. A path of a removed
    list element has its index before; every other path, its index after.
    """
    found = DeepDiff(_hashable_blocks(before), _hashable_blocks(after), view="tree")
    changes = []
    for level in (level for levels in found.values() for level in levels):
        path = (*prefix, *level.path(use_t2=True, output_format="list"))
        if isinstance(level.t1, _Block) and isinstance(level.t2, _Block):
            changes += changed_paths(level.t1.value, level.t2.value, path)
        else:
            changes.append((path, _plain(level.t1), _plain(level.t2)))
    return sorted(changes, key=lambda change: change[0])


def _hashable_blocks(value):
    if isinstance(value, dict):
        return {key: _hashable_blocks(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_Block(item) if isinstance(item, dict) else _hashable_blocks(item) for item in value]
    return value


def _plain(value):
    if value is notpresent:
        return None
    return value.value if isinstance(value, _Block) else value
