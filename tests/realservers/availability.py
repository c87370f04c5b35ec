"""What starting the real servers needs from the machine, checked before any test runs."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
from importlib.util import find_spec
from pathlib import Path


def postgres_bin_dir() -> Path | None:
    """The newest PostgreSQL's binaries (Debian keeps them off PATH), else those on PATH."""
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if all(os.access(Path(directory, name), os.X_OK) for name in ("initdb", "pg_ctl")):
            return Path(directory)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _version(directory: str) -> tuple[int, ...]:
    number = Path(directory).parent.name
    return tuple(int(part) for part in number.split(".") if part.isdigit())


def as_root() -> bool:
    return os.geteuid() == 0


def missing_binaries() -> list[str]:
    """What this machine lacks to start the servers; empty when nothing is missing."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if postgres_bin_dir() is None:
        missing.append("initdb and pg_ctl")
    # initdb refuses to run as root: the cluster is then run by the postgres user.
    if as_root() and shutil.which("runuser") is None:
        missing.append("runuser")
    if as_root() and not _user_exists("postgres"):
        missing.append("a postgres OS user")
    if find_spec("gunicorn") is None:
        missing.append("gunicorn")
    return missing


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
