"""Trying resource-server mode by hand, as docs/federation.md tells a newcomer:
``python -m tests.fake_issuer`` prints an entry and a token, the demo trusts the issuer
named by DEMO_TRUSTED_ISSUER."""

from __future__ import annotations

import ast
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tessera.models import ExternalIdentity

from .demo_support import EXAMPLE, ROOT, free_port
from .external_support import get

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.external_support")]
TOKEN_LINE = "Authorization: Bearer "


@pytest.fixture
def printed() -> Iterator[str]:
    """What ``python -m tests.fake_issuer`` prints, while it keeps serving."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_issuer", "--port", str(port), "--sub", "newcomer"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        yield _output_until_the_token(process)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _output_until_the_token(process: subprocess.Popen) -> str:
    output = b""
    deadline = time.monotonic() + 60
    while TOKEN_LINE.encode() not in output or not output.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and process.poll() is None, output.decode()
        if select.select([process.stdout], [], [], left)[0]:
            output += os.read(process.stdout.fileno(), 65536)
    return output.decode()


def _printed_entry(output: str) -> dict:
    line = next(line for line in output.splitlines() if "TRUSTED_ISSUERS" in line)
    return ast.literal_eval(line.split(" = ", 1)[1])[0]


def _printed_token(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(TOKEN_LINE))[
        len(TOKEN_LINE) :
    ]


def test_the_printed_entry_takes_the_printed_token(api, settings, printed):
    entry = _printed_entry(printed)
    settings.TESSERA = {**settings.TESSERA, "TRUSTED_ISSUERS": [entry]}
    response = get(api, _printed_token(printed))
    assert response.status_code == 200, response.content
    assert response.json()["sub"] == "newcomer"
    assert ExternalIdentity.objects.get(issuer=entry["issuer"]).subject == "newcomer"


def test_the_demo_trusts_the_issuer_it_is_given(printed):
    entry = _printed_entry(printed)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(EXAMPLE)]),
        "DEMO_TRUSTED_ISSUER": entry["issuer"],
    }
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", _SHOW_SETTINGS],
        cwd=EXAMPLE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    classes, issuers = json.loads(shown.splitlines()[-1])
    assert classes[0] == "tessera.authentication.ExternalJWTAuthentication"
    assert issuers == [entry]
    subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "ERROR"],
        cwd=EXAMPLE,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


_SHOW_SETTINGS = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps([s.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'], "
    "s.TESSERA['TRUSTED_ISSUERS']]))"
)
