"""A process beside the app servers that changes users and sessions outside any request.

``python -m tests.realservers.control``, with the servers' settings, reads one JSON
command a line on stdin (``{"op": "set_active", "username": "…", "active": false}``,
the operations of :mod:`tests.realservers.operations`) and answers each with one JSON
line on stdout: ``{"ok": true, "result": …}`` or ``{"ok": false, "error": "…"}``. The
app servers learn of these changes only through the database and the shared cache.
"""

from __future__ import annotations

import json
import sys
import traceback

import django


def main() -> None:
    django.setup()
    # Only once Django is set up can the models be imported.
    from django.db import close_old_connections

    from .operations import OPERATIONS

    for line in sys.stdin:
        # As a task worker does between tasks: a connection the database dropped (it was
        # restarted) is replaced, not failed on forever.
        close_old_connections()
        command = json.loads(line)
        try:
            answer = {"ok": True, "result": OPERATIONS[command.pop("op")](**command)}
        except Exception:
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
