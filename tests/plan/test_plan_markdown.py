"""The pull-request comment: marker, banner, folding and the size cap."""

import io

from plan_scenarios import SCENARIOS, game, resources, rule

from l4plan.diff import diff
from l4plan.render import markdown
from l4plan.render.markdown import MARKER, MAX_CHARS, MarkdownRenderer
from l4plan.render.text import TextRenderer


def _markdown(plan):
    stream = io.StringIO()
    MarkdownRenderer().render(plan, stream)
    return stream.getvalue()


def _text_line_count(plan):
    return len(TextRenderer().lines(plan.to_dict()))


def _created(count):
    apps = [
        game(name=f"app{i:04}", domain=f"app{i:04}.example.com") for i in range(count)
    ]
    return diff(resources(*apps), {})


def test_marker_comes_first():
    """The HTML marker opens every comment, so CI can find and update it."""
    for make in SCENARIOS.values():
        assert _markdown(make()).startswith(MARKER + "\n")


def test_warning_banner_only_when_destroying_or_replacing():
    """Deletes and replaces get a warning banner; creates and updates do not."""
    assert "[!WARNING]" in _markdown(SCENARIOS["delete"]())
    assert "[!WARNING]" in _markdown(SCENARIOS["replace"]())
    assert "[!WARNING]" not in _markdown(SCENARIOS["create"]())
    assert "[!WARNING]" not in _markdown(SCENARIOS["update"]())


def test_folds_past_forty_lines(monkeypatch):
    """A diff of exactly FOLD_AFTER_LINES lines stays open; one line more folds."""
    plan = SCENARIOS["update"]()
    count = _text_line_count(plan)
    monkeypatch.setattr(markdown, "FOLD_AFTER_LINES", count)
    assert "<details>" not in _markdown(plan)
    monkeypatch.setattr(markdown, "FOLD_AFTER_LINES", count - 1)
    assert f"<details><summary>Show plan ({count} lines)</summary>" in _markdown(plan)


def test_forty_lines_is_the_fold_limit():
    """With the real limit, a 38-line plan is open and a 46-line plan is folded."""
    small, large = SCENARIOS["update"](), SCENARIOS["create"]()
    assert _text_line_count(small) <= 40 < _text_line_count(large)
    assert "<details>" not in _markdown(small)
    assert "<details>" in _markdown(large)


def test_huge_plan_is_capped_below_65000_characters():
    """A plan too long for a comment is cut at a line, says so, and stays well formed."""
    plan = _created(300)
    text = _markdown(plan)
    total = _text_line_count(plan)
    assert len(text) < MAX_CHARS <= 65_000
    assert (
        "lines shown. The job log, or `l4plan show PLANFILE`, has the whole plan."
        in text
    )
    assert f" of {total} lines shown" in text
    assert text.rstrip().endswith("has the whole plan._")
    assert text.count("```") == 2 and "</details>" in text


def test_plan_just_under_the_cap_is_not_truncated():
    """A plan that fits is shown whole, without a truncation note."""
    text = _markdown(_created(40))
    assert len(text) < MAX_CHARS and "truncated" not in text


def test_backticks_in_a_comment_cannot_close_the_fence():
    """The fence is longer than any run of backticks in the plan."""
    sneaky = game(rules=(rule("tcp", "80", "8080", comment="``` then `````"),))
    text = _markdown(diff(resources(sneaky), {}))
    assert "``````diff\n" in text and text.rstrip().endswith("``````")


def test_glyphs_move_to_the_first_column_for_github_colours():
    """Changed lines start with +, - or ! so GitHub's diff highlighting shows them."""
    text = _markdown(SCENARIOS["update"]())
    assert "!       ipv6 = true -> false" in text
    assert '-       rule "tcp/80" {' in text
    assert '+       rule "udp/53" {' in text
