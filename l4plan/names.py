"""The names l4plan accepts, as patterns: one home for each, which the JSON
Schemas repeat (schemas/*.schema.json cannot import them; tests check they agree)."""

import re

#: A block's label: application, load_balancer, ip_access_rule, variable names.
BLOCK_NAME = r"[a-z][a-z0-9_-]{0,62}"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: A DNS host name in lower case: dot-separated labels, 253 characters at most.
HOST_NAME = rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*"

BLOCK_NAME_RE = re.compile(BLOCK_NAME)
HOST_NAME_RE = re.compile(HOST_NAME)
