"""The plan as a pull-request comment, from the Jinja2 template ``plan.md.j2``.

The text plan goes in a fenced ``diff`` block with each glyph moved to the
first column (``~`` shown as ``!``), so GitHub colours the lines. Long plans
fold into ``<details>``; the comment stays under GitHub's 65,536-character
limit; the marker comment lets a CI job find and update its earlier comment.
"""

import re

import jinja2

from l4plan.render.text import TextRenderer, as_dict

MARKER = "<!-- l4plan-plan -->"
FOLD_AFTER_LINES = 40
MAX_CHARS = 65_000
BANNER_ADDRESSES = 10

_GLYPH = re.compile(r"^( +)([-+~]) ")
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("l4plan.render", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    keep_trailing_newline=True,
)


class MarkdownRenderer:
    """One comment per plan; the same plan always gives the same comment."""

    def render(self, plan, stream):
        stream.write(self.document(as_dict(plan)))

    def document(self, data):
        lines = [_diff_line(line) for line in TextRenderer().lines(data)]
        context = _context(data, lines)
        text = _fill(context, lines)
        return text if len(text) < MAX_CHARS else _truncated(context, lines)


def _context(data, lines):
    return {
        "marker": MARKER,
        "title": _title(data),
        "banner": _banner(data["changes"]),
        "folded": len(lines) > FOLD_AFTER_LINES,
        "line_count": len(lines),
        "fence": _fence(lines),
    }


def _fill(context, lines, truncated=None):
    template = _ENV.get_template("plan.md.j2")
    return template.render(context, diff="\n".join(lines), truncated=truncated)


def _truncated(context, lines):
    """The comment with as many leading lines as fit below MAX_CHARS, and a note."""
    overhead = len(_fill(context, [], _note(len(lines), len(lines))))
    budget, kept = MAX_CHARS - overhead - 1, []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        kept.append(line)
    return _fill(context, kept, _note(len(kept), len(lines)))


def _note(shown, total):
    return (
        f"Plan truncated to fit a comment: {shown} of {total} lines shown. "
        "The job log, or `l4plan show PLANFILE`, has the whole plan."
    )


def _title(data):
    summary = data["summary"]
    title = "l4plan plan: " + (
        f"{summary['add']} to add, {summary['change']} to change, "
        f"{summary['destroy']} to destroy"
        if data["has_changes"]
        else "no changes"
    )
    drift = len(data["drift"])
    if drift:
        title += f" · {drift} {'object' if drift == 1 else 'objects'} changed outside of l4plan"
    return title


def _banner(changes):
    doomed = [c for c in changes if c["action"] in ("delete", "replace")]
    if not doomed:
        return None
    shown = [f"`{c['address']}` ({c['action']})" for c in doomed[:BANNER_ADDRESSES]]
    more = len(doomed) - len(shown)
    listed = ", ".join(shown) + (f" and {more} more" if more else "")
    noun = "object" if len(doomed) == 1 else "objects"
    return f"This plan destroys or replaces {len(doomed)} {noun}: {listed}."


def _fence(lines):
    """Longer than any run of backticks in the plan, so no comment can close it."""
    runs = re.findall(r"`+", "\n".join(lines))
    return "`" * max([3, *(len(r) + 1 for r in runs)])


def _diff_line(line):
    """``      ~ ipv6`` becomes ``!       ipv6``: the glyph in column 0, width kept."""
    match = _GLYPH.match(line)
    if not match:
        return line
    glyph = "!" if match[2] == "~" else match[2]
    return f"{glyph}{match[1]} {line[match.end():]}"
