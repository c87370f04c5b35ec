""".ci/run and the service marks: in CI a missing PostgreSQL or Redis fails, never skips.

The script runs with stand-ins for make and the service tools on PATH, so these tests
exercise its decisions without running the suite again or touching real services.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICE_TEST = "tests/test_cache_backend.py::test_behaves_as_djangos_backend"  # redis-marked
BROWSER_TEST = "tests/test_passkeys_browser.py"


def run_pytest_without_services(**env: str) -> subprocess.CompletedProcess:
    """Run one Redis-marked test in a fresh pytest, with neither service configured."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SERVICE_TEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": "", "REDIS_URL": "", **env},
    )


def test_a_service_test_skips_on_a_developer_machine():
    result = run_pytest_without_services(TESSERA_REQUIRE_SERVICES="")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout


def test_a_service_test_fails_when_services_are_required():
    result = run_pytest_without_services(TESSERA_REQUIRE_SERVICES="1")
    assert result.returncode == 1, result.stdout
    assert "TESSERA_REQUIRE_SERVICES=1, but this test needs Redis" in result.stdout
    assert "skipped" not in result.stdout


def stand_in(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_browser_test_without_chromium(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", BROWSER_TEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TESSERA_CHROMIUM": "/nonexistent", **env},
    )


def test_the_browser_test_skips_without_chromium_even_when_services_are_required():
    result = run_browser_test_without_chromium(TESSERA_REQUIRE_SERVICES="1", CI="")
    assert result.returncode == 0, result.stdout
    assert "needs Debian's Chromium at /nonexistent" in result.stdout
    assert "1 skipped" in result.stdout


def test_in_ci_the_browser_test_fails_without_chromium():
    result = run_browser_test_without_chromium(TESSERA_REQUIRE_SERVICES="", CI="true")
    assert result.returncode == 1, result.stdout
    assert "CI=true, but this test needs Debian's Chromium at /nonexistent" in result.stdout
    assert "skipped" not in result.stdout


def test_make_e2e_runs_the_browser_tests_and_make_test_does_not_leave_them_out():
    makefile = (ROOT / "Makefile").read_text()
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    assert "e2e" in phony.split()
    recipe = makefile.split("\ne2e:", 1)[1].split("\n\n", 1)[0]
    assert "-m browser" in recipe
    assert "TESSERA_SCREENSHOTS=docs/screenshots" in recipe
    # Every -m expression CI passes to `make test` keeps the browser tests in.
    ci = (ROOT / ".ci" / "run").read_text()
    marks = re.findall(r"-m '([^']*)'", ci) + re.findall(r"-m '([^']*)'", makefile)
    assert marks, "no -m expression found"
    assert all("browser" not in expression for expression in marks), marks


@pytest.fixture
def unreachable_services(tmp_path) -> dict:
    """A PATH on which make succeeds (logging its calls) and no service answers or starts;
    a Chromium stand-in where .ci/run looks for one, and an apt-get that installs nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "make.log"
    stand_ins = {
        "make": f'echo "$*" >> "{log}"',
        "pg_isready": "exit 2",
        "pg_ctlcluster": "exit 1",
        "redis-cli": "exit 1",
        "redis-server": "exit 1",
        "apt-get": f'echo "$*" >> "{tmp_path / "apt-get.log"}"; exit 1',
    }
    for name, body in stand_ins.items():
        stand_in(bin_dir / name, body)
    chromium = tmp_path / "chromium"
    stand_in(chromium, "exit 0")
    node, npm = tmp_path / "node", tmp_path / "npm"
    stand_in(node, "exit 0")
    stand_in(npm, "exit 0")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "log": log,
        "chromium": chromium,
        "node": node,
        "npm": npm,
        "apt-get log": tmp_path / "apt-get.log",
    }


def run_ci(unreachable_services: dict, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PATH": unreachable_services["PATH"],
            "TESSERA_CHROMIUM": str(unreachable_services["chromium"]),
            "TESSERA_NODE": str(unreachable_services["node"]),
            "TESSERA_NPM": str(unreachable_services["npm"]),
            **env,
        },
    )


def test_ci_fails_when_the_services_cannot_be_reached(unreachable_services):
    result = run_ci(unreachable_services, CI="true")
    assert result.returncode == 1, result.stdout
    assert "FAIL (CI=true): PostgreSQL does not answer on 127.0.0.1:5432" in result.stdout
    assert "SKIPPED" not in result.stdout
    # The SQLite pass and the wheel check still ran first, and no PostgreSQL pass began.
    assert unreachable_services["log"].read_text().splitlines() == [
        "test",
        "docs",
        "package-check",
        "audit-deps",
    ]


def test_a_developer_run_skips_the_second_pass_without_the_services(unreachable_services):
    result = run_ci(unreachable_services, CI="")
    assert result.returncode == 0, result.stdout
    assert "=== SKIPPED the PostgreSQL + Redis run: PostgreSQL does not answer" in result.stdout


def test_ci_fails_when_chromium_is_missing_and_cannot_be_installed(unreachable_services):
    unreachable_services["chromium"].unlink()
    result = run_ci(unreachable_services, CI="true")
    assert result.returncode == 1, result.stdout
    assert "FAIL (CI=true): no Chromium at" in result.stdout
    # Nothing ran: a pass without the browser tests would claim what it did not run.
    assert not unreachable_services["log"].exists()
    if os.geteuid() == 0:
        assert unreachable_services["apt-get log"].read_text().startswith("update")


def test_a_developer_run_without_chromium_goes_on_without_the_browser_test(
    unreachable_services,
):
    unreachable_services["chromium"].unlink()
    result = run_ci(unreachable_services, CI="")
    assert result.returncode == 0, result.stdout
    assert "the browser tests will skip" in result.stdout
    assert unreachable_services["log"].read_text().splitlines() == [
        "test",
        "docs",
        "package-check",
        "audit-deps",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason=".ci/run installs Chromium only as root")
def test_ci_installs_a_missing_chromium_with_apt_get(unreachable_services, tmp_path):
    chromium = unreachable_services["chromium"]
    chromium.unlink()
    stand_in(
        tmp_path / "bin" / "apt-get",
        f'[ "$1" = update ] || {{ printf "#!/bin/sh\\n" > "{chromium}"; chmod +x "{chromium}"; }}',
    )
    result = run_ci(unreachable_services, CI="true")
    assert "apt-get install chromium" in result.stdout
    assert chromium.exists()
    # Past the Chromium step: the run fails later, on the unreachable services.
    assert "FAIL (CI=true): PostgreSQL does not answer" in result.stdout


@pytest.mark.parametrize("missing", ["node", "npm"])
def test_ci_fails_when_node_or_npm_is_missing_and_cannot_be_installed(
    unreachable_services, missing
):
    unreachable_services[missing].unlink()
    result = run_ci(unreachable_services, CI="true")
    assert result.returncode == 1, result.stdout
    assert "FAIL (CI=true): Node.js or npm is missing" in result.stdout
    assert not unreachable_services["log"].exists()
    if os.geteuid() == 0:
        assert unreachable_services["apt-get log"].read_text().startswith("update")


def test_a_developer_run_without_node_goes_on_without_the_newman_tests(unreachable_services):
    unreachable_services["node"].unlink()
    result = run_ci(unreachable_services, CI="")
    assert result.returncode == 0, result.stdout
    assert "the Postman collection's newman and schema tests will skip" in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason=".ci/run installs Node.js only as root")
def test_ci_installs_missing_node_and_npm_with_apt_get(unreachable_services, tmp_path):
    node, npm = unreachable_services["node"], unreachable_services["npm"]
    node.unlink()
    npm.unlink()
    installs = f'printf "#!/bin/sh\\n" | tee "{node}" > "{npm}"; chmod +x "{node}" "{npm}"'
    stand_in(tmp_path / "bin" / "apt-get", f'[ "$1" = update ] || {{ {installs}; }}')
    result = run_ci(unreachable_services, CI="true")
    assert "apt-get install nodejs npm" in result.stdout
    assert node.exists() and npm.exists()
    assert "FAIL (CI=true): PostgreSQL does not answer" in result.stdout
