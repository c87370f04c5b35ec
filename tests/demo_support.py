"""The demo project served for real: ``manage.py runserver`` on a free port.

Browser and API-client tests (Chromium, newman) talk to the demo exactly as a deployed
front end would, so it runs in its own process, on a SQLite file of its own, seeded
with the demo users.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
# A cheap Tessera endpoint that answers once the server is up (204 and a CSRF cookie).
READY_PATH = "/api/auth/csrf/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DemoServer:
    """``manage.py runserver`` of the demo, on its own SQLite file."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.database = directory / "demo.sqlite3"
        self.log = directory / "server.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "demo.settings",
            "DJANGO_DEBUG": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(EXAMPLE)]),
            "DATABASE_URL": f"sqlite:///{self.database}",
            "REDIS_URL": "",
            "DEMO_ORIGIN": self.origin,
        }
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage("demo_seed")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                cwd=EXAMPLE,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the demo server exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{READY_PATH}", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        pytest.fail(f"the demo server did not answer in time:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rows(self, query: str) -> list[tuple]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(query).fetchall()
