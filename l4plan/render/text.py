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
        body = [(0, *line) for line in _attribute_lines(change)] + _rules(change)
        return [opening, *(self._line(*line) for line in body), "    }"]

    def _line(self, depth, glyph, text):
        """One body line; depth 0 is an attribute of the object, 1 of a rule."""
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
    """``(glyph, text)`` per shown attribute, names aligned, unchanged ones counted."""
    before, after = change["before"] or {}, change["after"] or {}
    action = change["action"]
    names = sorted((before.keys() | after.keys()) - {"rules"})
    if action in ("update", "replace"):
        names = change["changed_attributes"]
    forcing = {p[0] for p in change["replace_paths"] if len(p) == 1}
    lines = _aligned(names, before, after, forcing, deleting=action == "delete")
    hidden = len(after.keys() - {"rules"} - set(names)) if action != "delete" else 0
    if hidden:
        lines.append(("", f"# ({_count(hidden, 'unchanged attribute')} hidden)"))
    return lines


def _aligned(names, before, after, forcing=(), deleting=False):
    width = max((len(n) for n in names), default=0)
    lines = []
    for name in names:
        glyph, text = _attribute(name, before, after, deleting)
        note = " # forces replacement" if name in forcing else ""
        lines.append((glyph, f"{name.ljust(width)} = {text}{note}"))
    return lines


def _attribute(name, before, after, deleting):
    if name not in before:
        return "+", _value(after[name])
    if name not in after or deleting:
        return "-", f"{_value(before[name])} -> null"
    return "~", f"{_value(before[name])} -> {_value(after[name])}"


def _rule_lines(rule):
    before, after = rule["before"] or {}, rule["after"] or {}
    names = sorted(before.keys() | after.keys())
    if rule["action"] == "update":
        names = rule["changed_attributes"]
    lines = _aligned(names, before, after, deleting=rule["action"] == "delete")
    hidden = len(after.keys() - set(names)) if rule["action"] == "update" else 0
    if hidden:
        lines.append(("", f"# ({_count(hidden, 'unchanged attribute')} hidden)"))
    if rule["mapping"]:
        lines.append(("", f"# port mapping: {rule['mapping']}"))
    if rule.get("open_connections"):
        lines.append(("", f"# {_open_note(rule)}"))
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
        lines.append((0, GLYPHS[rule["action"]], f'rule "{rule["key"]}" {{'))
        lines += [(1, *line) for line in _rule_lines(rule)]
        lines.append((0, "", "}"))
    unchanged = _unchanged_rules(change)
    if unchanged:
        lines.append((0, "", f"# ({_count(unchanged, 'unchanged rule')} hidden)"))
    return lines


def _unchanged_rules(change):
    if change["action"] not in ("update", "replace"):
        return 0
    shown = sum(1 for r in change["rule_changes"] if r["action"] != "delete")
    return len(change["after"].get("rules", ())) - shown
