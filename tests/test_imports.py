"""Every public module imports on its own, first, in a fresh interpreter: no import cycles."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tessera"


# The modules a project imports by name (settings, urls, its own code).
PUBLIC_MODULES = [
    "tessera.authentication",
    "tessera.permissions",
    "tessera.errors",
    "tessera.signals",
    "tessera.views",
    "tessera.urls",
    "tessera.models",
    "tessera.cache",
    "tessera.admin",
    "tessera.conf",
    "tessera.checks",
    "tessera.legacy",
    "tessera.schema_extensions",
]


def import_first(module: str) -> tuple[str, int, str]:
    # django.setup() loads the app registry, as any project does before importing a view.
    code = f"import django; django.setup(); import {module}"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return module, result.returncode, result.stderr[-2000:]


def test_every_public_module_imports_first_without_a_cycle():
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [r for r in pool.map(import_first, PUBLIC_MODULES) if r[1] != 0]
    assert not failures, "\n\n".join(f"{m}:\n{e}" for m, _, e in failures)


def test_no_module_level_getattr_shim():
    shims = [p for p in PACKAGE.rglob("*.py") if "\ndef __getattr__(" in p.read_text()]
    assert not shims
