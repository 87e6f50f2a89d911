"""The machine plan: ``Plan.to_dict()`` as JSON (schemas/plan.schema.json)."""

import json

from l4plan.render.text import as_dict


class JsonRenderer:
    """Stable output: sorted keys, two-space indent, one trailing newline."""

    def render(self, plan, stream):
        stream.write(json.dumps(as_dict(plan), sort_keys=True, indent=2) + "\n")
