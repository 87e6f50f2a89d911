"""The human plan, read the way Terraform's is.

Built from the plan's JSON form (``Plan.to_dict()``), as Terraform builds its
human plan from jsonplan, so what people read is what machines read: a
legend of the symbols used, one block per changed address with ``~ old ->
new`` lines, ``# forces replacement``, rules by ``protocol/edge_port`` with
their port mapping, then the summary line. Drift comes first.
"""

import json

LEGEND = {
    "create": "create",
    "update": "update in-place",
    "delete": "destroy",
    "replace": "destroy and then create replacement",
}
GLYPHS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
HEADLINES = {
    "create": "will be created",
    "update": "will be updated in-place",
    "delete": "will be destroyed",
    "replace": "must be replaced",
}
#: ANSI SGR codes, as Terraform colours its glyphs: green, yellow, red; bold.
COLOURS = {"+": "32", "~": "33", "-": "31"}
BOLD = "1"
NO_CHANGES = "No changes. The runtime matches the configuration."
NO_DRIFT = (
    "No changes. The runtime still matches the state: l4plan read every object "
    "it manages and found no differences."
)
UNDO_NOTE = "Unless the configuration makes the same changes, the plan below undoes them."
REFRESH_ONLY_NOTE = (
    "This is a refresh-only plan, so l4plan will not undo these changes. Applying "
    "it records them in the state and changes nothing on the runtime."
)
RULER = "─" * 77


def as_dict(plan):
    """Renderers take a Plan or its ``to_dict()`` form."""
    return plan.to_dict() if hasattr(plan, "to_dict") else plan


class TextRenderer:
    """Plain text, coloured with ANSI escapes only when ``color`` is true."""

    def __init__(self, color=False):
        self._color = color

    def render(self, plan, stream):
        stream.write("\n".join(self.lines(as_dict(plan))) + "\n")

    def lines(self, data):
        """Every line of the plan, without line ends."""
        if data.get("mode") == "refresh-only":
            if not data["drift"]:
                return [self._bold(NO_DRIFT)]
            return self._drift(data["drift"], REFRESH_ONLY_NOTE)
        out = [*self._drift(data["drift"], UNDO_NOTE), "", RULER, ""] if data["drift"] else []
        if not data["has_changes"]:
            return [*out, self._bold(NO_CHANGES)]
        changed = [c for c in data["changes"] if c["action"] != "no-op"]
        return [
            *out,
            *self._legend(changed),
            *self._blocks(changed),
            self._summary(data["summary"]),
        ]

    def _drift(self, drift, note):
        intro = [
            self._bold("Note: Objects have changed outside of l4plan"),
            "",
            "l4plan found these changes on the runtime since the last apply:",
            "",
        ]
        return [*intro, *self._blocks(drift, drift=True), note]

    def _legend(self, changes):
        used = {c["action"] for c in changes}
        symbols = [a for a in LEGEND if a in used]
        return [
            "Resource actions are indicated with the following symbols:",
            *(f"{self._glyph(a, 3)} {LEGEND[a]}" for a in symbols),
            "",
            "l4plan will perform the following actions:",
            "",
        ]

    def _blocks(self, changes, drift=False):
        lines = []
        for change in changes:
            lines += self._headline(change, drift)
            lines += self._block(change)
            lines.append("")
        return lines

    def _headline(self, change, drift):
        """A drift change's reason is its headline ("has changed outside of l4plan")."""
        address = self._bold(change["address"])
        if drift:
            return [f"  # {address} {change['reason']}"]
        lines = [f"  # {address} {HEADLINES[change['action']]}"]
        if change["reason"] and change["action"] == "delete":
            lines.append(f"  # (because {change['reason']})")
        return lines

    def _block(self, change):
        action = change["action"]
        opening = f'{self._glyph(action, 3)} {change["type"]} "{change["name"]}" {{'
        body = _attribute_lines(change) + _rules(change)
        return [opening, *(self._line(*line) for line in body), "    }"]

    def _line(self, depth, glyph, text):
        """One body line; depth 0 is an attribute of the object, each block or list in it one deeper."""
        prefix = f"{self._glyph(glyph)} " if glyph else "  "
        return " " * (6 + 4 * depth) + prefix + text

    def _summary(self, summary):
        counts = (
            f"{summary['add']} to add, {summary['change']} to change, "
            f"{summary['destroy']} to destroy."
        )
        return f"{self._bold('Plan:')} {counts}"

    def _glyph(self, action_or_glyph, width=1):
        """The glyph right-aligned in ``width`` columns, coloured when asked."""
        glyph = GLYPHS.get(action_or_glyph, action_or_glyph)
        padding = " " * (width - len(glyph))
        if not self._color:
            return padding + glyph
        return padding + "/".join(_styled(g, COLOURS[g]) for g in glyph.split("/"))

    def _bold(self, text):
        return _styled(text, BOLD) if self._color else text


def _styled(text, code):
    return f"\x1b[{code}m{text}\x1b[0m"


def _value(value):
    return json.dumps(value, ensure_ascii=False)


def _count(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _attribute_lines(change):
    """``(depth, glyph, text)`` lines of the object's attributes, rules aside."""
    before, after = (_without_rules(change[side]) for side in ("before", "after"))
    if change["action"] not in ("update", "replace"):
        return _whole_object(after or before, GLYPHS[change["action"]])
    forcing = {p[0] for p in change["replace_paths"] if len(p) == 1}
    changes = [(tuple(c["path"]), c["before"], c["after"]) for c in change["attribute_changes"]]
    return _changed_object(after, changes, forcing)


def _without_rules(attributes):
    return {k: v for k, v in (attributes or {}).items() if k != "rules"}


def _nested(glyph, opening, body, closing):
    """A block or list: its opening line, its body one level deeper, its closing line."""
    return [(0, glyph, opening), *((depth + 1, g, text) for depth, g, text in body), (0, "", closing)]


def _shows_as_block(value, changes=()):
    """Objects and lists of objects show as blocks (``origin { … }``), the rest as
    ``name = …``; ``changes`` under the value tell when one side is missing."""
    values = [value, *(v for _, old, new in changes for v in (old, new))]
    values += [v for listed in values if isinstance(listed, list) for v in listed]
    return any(isinstance(v, dict) for v in values)


def _singular(name):
    """The block name of a list's elements: ``origins`` holds ``origin`` blocks."""
    return name.removesuffix("s")


def _whole_object(attributes, glyph):
    """Every attribute of an object created (``+``) or destroyed (``-``) whole:
    attributes aligned, then blocks, as Terraform shows them."""
    names = sorted(attributes)
    plain = [n for n in names if not _shows_as_block(attributes[n])]
    width = max(map(len, plain), default=0)
    blocks = [n for n in names if n not in plain]
    return [
        line
        for name in plain + blocks
        for line in _whole(name, attributes[name], glyph, width)
    ]


def _whole(name, value, glyph, width=0):
    """One attribute or block created or destroyed whole; a destroyed value ends ``-> null``."""
    gone = " -> null" if glyph == "-" else ""
    if isinstance(value, dict):
        return _nested(glyph, f"{name} {{", _whole_object(value, glyph), "}")
    if _shows_as_block(value):
        return [line for item in value for line in _whole(_singular(name), item, glyph)]
    if isinstance(value, list) and value:
        elements = [(0, glyph, f"{_value(v)},") for v in value]
        return _nested(glyph, f"{name.ljust(width)} = [", elements, f"]{gone}")
    return [(0, glyph, f"{name.ljust(width)} = {_value(value)}{gone}")]


def _changed_object(after, changes, forcing=(), align_all=False):
    """An object that differs at ``changes`` (``(path, before, after)``, paths
    from the object): changed attributes, the count of unchanged ones, then
    changed blocks. Names align over the changed attributes, or with
    ``align_all`` over every attribute of the object, as Terraform aligns a
    nested block."""
    grouped: dict = {}
    for path, old, new in changes:
        grouped.setdefault(path[0], []).append((path[1:], old, new))
    names = sorted(grouped)
    plain = [n for n in names if not _shows_as_block(after.get(n), grouped[n])]
    aligned = plain + [n for n in after if align_all and not _shows_as_block(after[n])]
    width = max(map(len, aligned), default=0)
    lines = []
    for name in plain:
        note = " # forces replacement" if name in forcing else ""
        lines += _changed(name, grouped[name], after.get(name), width, note)
    hidden = len(after.keys() - grouped.keys())
    if hidden:
        lines.append((0, "", f"# ({_count(hidden, 'unchanged attribute')} hidden)"))
    for name in (n for n in names if n not in plain):
        lines += _changed(name, grouped[name], after.get(name))
    return lines


def _changed(name, changes, value, width=0, note=""):
    """One attribute or block that differs at ``changes`` (paths from it);
    ``value`` is what it is after."""
    whole = [(old, new) for rest, old, new in changes if not rest]
    if whole:
        ((old, new),) = whole
        if None not in (old, new) and not _shows_as_block(old) and not _shows_as_block(new):
            return [(0, "~", f"{name.ljust(width)} = {_value(old)} -> {_value(new)}{note}")]
        removed = _whole(name, old, "-", width) if old is not None else []
        return removed + (_whole(name, new, "+", width) if new is not None else [])
    if isinstance(value, dict):
        return _nested("~", f"{name} {{", _changed_object(value, changes, align_all=True), "}")
    if _shows_as_block(value, changes):
        return _changed_blocks(name, changes, value)
    return _changed_elements(name, changes, value, width)


def _changed_blocks(name, changes, after):
    """The blocks of a list that were added, removed or changed, then the count of the others."""
    by_index: dict = {}
    for rest, old, new in changes:
        by_index.setdefault(rest[0], []).append((rest[1:], old, new))
    block, lines = _singular(name), []
    for index, inner in sorted(by_index.items()):
        lines += _changed(block, inner, after[index] if index < len(after) else None)
    removed = sum(1 for inner in by_index.values() if inner[0][0] == () and inner[0][2] is None)
    hidden = len(after) - (len(by_index) - removed)
    if hidden:
        lines.append((0, "", f"# ({_count(hidden, f'unchanged {block} block')} hidden)"))
    return lines


def _changed_elements(name, changes, after, width):
    """A list of values element by element: ``- old``, ``+ new``, then the count of the others."""
    elements = []
    for _, old, new in changes:
        elements += [(0, "-", f"{_value(old)},")] if old is not None else []
        elements += [(0, "+", f"{_value(new)},")] if new is not None else []
    hidden = len(after) - sum(1 for _, _, new in changes if new is not None)
    if hidden:
        elements.append((0, "", f"# ({_count(hidden, 'unchanged element')} hidden)"))
    return _nested("~", f"{name.ljust(width)} = [", elements, "]")


def _rule_lines(rule):
    before, after = rule["before"], rule["after"]
    if rule["action"] == "update":
        changes = [((n,), before.get(n), after.get(n)) for n in rule["changed_attributes"]]
        lines = _changed_object(after, changes)
    else:
        lines = _whole_object(after or before, GLYPHS[rule["action"]])
    if rule["mapping"]:
        lines.append((0, "", f"# port mapping: {rule['mapping']}"))
    if rule.get("open_connections"):
        lines.append((0, "", f"# {_open_note(rule)}"))
    return lines


def _open_note(rule):
    """Live impact: what happens to the connections open on a changed or removed
    rule, as the runtime does it: a kept listener keeps its connections, a
    removed one drains TCP and ends UDP sessions at once."""
    udp = rule["before"]["protocol"] == "udp"
    noun = "session" if udp else "connection"
    gone = "they end at once (their listener is removed)" if udp else "they drain, then close"
    kept = rule.get("kept_ports")
    if rule["action"] != "delete":
        fate = "they keep the old rule until they end"
    elif kept == rule["before"]["edge_port"]:
        fate = "they stay open: another rule keeps every listener, and they keep the old rule until they end"
    elif kept:
        fate = f"those on {kept} stay open (the listeners are kept); on the other ports {gone}"
    else:
        fate = gone
    return f"live: {_count(rule['open_connections'], noun)} open now, {fate}"


def _rules(change):
    """``(depth, glyph, text)`` lines of the changed rules, then the unchanged count."""
    lines = []
    for rule in change["rule_changes"]:
        lines += _nested(GLYPHS[rule["action"]], f'rule "{rule["key"]}" {{', _rule_lines(rule), "}")
    unchanged = _unchanged_rules(change)
    if unchanged:
        lines.append((0, "", f"# ({_count(unchanged, 'unchanged rule')} hidden)"))
    return lines


def _unchanged_rules(change):
    if change["action"] not in ("update", "replace"):
        return 0
    shown = sum(1 for r in change["rule_changes"] if r["action"] != "delete")
    return len(change["after"].get("rules", ())) - shown
