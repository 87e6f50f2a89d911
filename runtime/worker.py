"""A child worker of `l4plan runtime serve --workers N`, started by main.

usage: python -m l4plan.runtime.worker SETTINGS_JSON ADMIN_SOCKET

SETTINGS_JSON are main's settings with a private data dir; descriptor 3 is a
unix socket to main, whose end stops this worker (see ``l4plan.runtime.workers``).
"""

import json
import os
import sys

from l4plan.runtime.serve import run
from l4plan.runtime.settings import Settings
from l4plan.runtime.workers import CHANNEL_FD


def main(settings_json, admin_socket):
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches main alone, which stops the workers once
    return run(Settings(**json.loads(settings_json)), admin=("unix", admin_socket), parent=CHANNEL_FD)


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
