"""What installing drf-tessera pulls in: the core needs only Django's own hashers."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import tessera

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_argon2_is_an_extra_that_dev_includes():
    assert not [dep for dep in project()["dependencies"] if dep.startswith("argon2")]
    extras = project()["optional-dependencies"]
    assert [dep.split(">=")[0] for dep in extras["argon2"]] == ["argon2-cffi"]
    self_reference = next(dep for dep in extras["dev"] if dep.startswith("drf-tessera["))
    assert "argon2" in self_reference.split("[")[1].rstrip("]").split(",")


def test_every_module_imports_without_argon2():
    # A None entry in sys.modules makes `import argon2` fail as if it were not installed.
    script = (
        "import sys; sys.modules['argon2'] = None\n"
        "import django, pkgutil, importlib, tessera\n"
        "django.setup()\n"
        "for module in pkgutil.walk_packages(tessera.__path__, 'tessera.'):\n"
        "    importlib.import_module(module.name)\n"
    )
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(tessera.__file__).parent.parent), str(ROOT), str(ROOT / "example")]
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
