"""Durations as users write them for ``--lock-timeout``: ``30s``, ``2m``, ``500ms``."""

import re

from l4plan.state.errors import InvalidDuration

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)"


def parse_duration(text):
    """Seconds in ``text``: parts such as ``1m30s``, or a bare ``0``.

    A number without a unit other than 0 is refused, as Go's durations and so
    Terraform's ``-lock-timeout`` do, since ``5`` could mean seconds or minutes.
    """
    stripped = text.strip()
    if re.fullmatch(r"0+(\.0*)?", stripped):
        return 0.0
    if not re.fullmatch(f"(?:{_PART})+", stripped):
        raise InvalidDuration(
            f"invalid duration {text!r}: write a number and a unit "
            f'(ms, s, m or h), e.g. "500ms", "30s", "2m", "1m30s", or "0"'
        )
    return sum(float(n) * _UNITS[u] for n, u in re.findall(_PART, stripped))
