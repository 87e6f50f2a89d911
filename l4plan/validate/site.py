"""The ``site`` block: the zone the applications live in."""

from typing import Any

from l4plan.model import Site
from l4plan.validate.addresses import is_host_name


def check_site(report):
    """The one site, or None when there is not exactly one valid block."""
    blocks = report.blocks("site")
    if len(blocks) != 1:
        return None
    name, body = blocks[0]
    path = ("site", name)
    if not is_host_name(name) or "." not in name:
        report.error(path, f'site "{name}" is not a domain name', 'Name the site after its zone, e.g. site "example.com".')
    if body["plan"] != "enterprise":
        report.error(
            path + ("plan",),
            f'Layer 4 proxy needs the Enterprise plan; this site is on "{body["plan"]}"',
            'Upgrade the site to the Enterprise plan and set plan = "enterprise".',
        )
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in body.items()}
    return Site(name=name.lower(), **fields)
