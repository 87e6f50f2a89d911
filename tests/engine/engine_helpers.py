"""What the engine tests import: the configuration pieces, the subprocess
timeout, and waiting for a file a process makes.

Not in conftest.py: tests/live has a conftest too, and a test importing
"conftest" would get whichever of the two was imported first.
"""

import time

SITE = 'site "example.com" {\n  plan = "enterprise"\n}\n'
SUBPROCESS_TIMEOUT = 60
WAIT_SECONDS = 20


def wait_for(path):
    """Wait (bounded) until ``path`` exists."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def application(
    name, edge_port="7000", origin_port="17000", domain=None, protect=False
):
    """The HCL of one application with one TCP rule."""
    lifecycle = "  lifecycle { prevent_destroy = true }\n" if protect else ""
    return (
        f'application "{name}" {{\n'
        f'  domain = "{domain or name + ".example.com"}"\n{lifecycle}'
        f"  rule {{\n"
        f'    protocol    = "tcp"\n'
        f'    edge_port   = "{edge_port}"\n'
        f'    origin      = "127.0.0.1"\n'
        f'    origin_port = "{origin_port}"\n'
        f"  }}\n}}\n"
    )
