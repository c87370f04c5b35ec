"""``tessera_postman``: the collection is well formed, covers every Tessera operation, and
runs green in newman against the demo served for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tessera.management.commands import tessera_postman

NEWMAN_HOME = Path(os.environ.get("TESSERA_NEWMAN_HOME", Path.home() / ".cache" / "tessera-newman"))
FLOW = [
    "Sign up",
    "Log in (opaque token)",
    "Call a protected endpoint (me/)",
    "List my sessions",
    "Log in (JWT pair)",
    "Refresh the JWT pair (rotated)",
    "Verify the access token",
    "Log out",
    "The old token is refused",
]


def generate(folder: Path, *args: str) -> tuple[dict, dict]:
    call_command("tessera_postman", "--output", str(folder), *args, stdout=StringIO())
    collection = json.loads((folder / tessera_postman.COLLECTION_FILE).read_text())
    environment = json.loads((folder / tessera_postman.ENVIRONMENT_FILE).read_text())
    return collection, environment


def requests_in(item: dict) -> list[dict]:
    if "request" in item:
        return [item]
    return [leaf for child in item["item"] for leaf in requests_in(child)]


def assert_well_formed(item: dict) -> None:
    """The parts of the v2.1 collection format every item must have."""
    assert isinstance(item["name"], str) and item["name"]
    if "item" in item:
        assert isinstance(item["item"], list)
        for child in item["item"]:
            assert_well_formed(child)
        return
    request = item["request"]
    assert request["method"] in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert request["url"]["raw"].startswith("{{base_url}}/")
    assert request["url"]["host"] == ["{{base_url}}"]
    assert request["auth"]["type"] in {"bearer", "noauth"}
    for event in item.get("event", []):
        assert event["listen"] in {"test", "prerequest"}
        assert all(isinstance(line, str) for line in event["script"]["exec"])
    if "body" in request:
        assert request["body"]["mode"] == "raw"
        json.loads(request["body"]["raw"].replace("{{", "").replace("}}", ""))


def test_the_collection_is_v2_1_and_covers_every_tessera_operation(tmp_path, db):
    collection, environment = generate(tmp_path, "--base-url", "https://api.example.com/")

    assert collection["info"]["schema"] == tessera_postman.SCHEMA_URL
    for item in collection["item"]:
        assert_well_formed(item)
    flow, reference = collection["item"]
    assert [item["name"] for item in flow["item"]] == FLOW

    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator()
    generator.get_schema(request=None, public=True)
    expected = sorted(
        (method.upper(), path)
        for path, _regex, method, callback in generator.endpoints
        if callback.cls.__module__.startswith("tessera.")
    )
    listed = sorted(
        (leaf["request"]["method"], "/" + "/".join(leaf["request"]["url"]["path"]))
        for leaf in requests_in(reference)
    )
    # Sorted again once Postman's :name is spelt {name}: the two sort differently.
    assert sorted((m, re.sub(r":(\w+)", r"{\1}", p)) for m, p in listed) == expected
    assert "/api/protected/" not in {p for _m, p in listed}  # the project's own, not Tessera's
    values = {entry["key"]: entry["value"] for entry in environment["values"]}
    assert values["base_url"] == "https://api.example.com"
    assert {"auth_token", "access", "refresh"} <= set(values)


def test_an_operation_needing_a_login_carries_the_token_and_an_example_body(tmp_path, db):
    collection, _ = generate(tmp_path)
    leaves = {leaf["name"]: leaf for leaf in requests_in(collection["item"][1])}
    change = next(
        leaf
        for leaf in leaves.values()
        if leaf["request"]["url"]["path"][-3:-1] == ["password", "change"]
    )
    assert change["request"]["auth"]["bearer"][0]["value"] == "{{auth_token}}"
    body = json.loads(change["request"]["body"]["raw"])
    assert body["current_password"] == "{{password}}"
    assert "new_password" in body
    login = next(
        leaf for leaf in leaves.values() if leaf["request"]["url"]["path"][-2:] == ["login", ""]
    )
    assert login["request"]["auth"] == {"type": "noauth"}


def test_a_project_without_jwt_gets_a_flow_without_those_steps(tmp_path, db):
    with override_settings(ROOT_URLCONF="tests.postman_urls"):
        collection, _ = generate(tmp_path)
    names = [item["name"] for item in collection["item"][0]["item"]]
    assert names == [name for name in FLOW if "JWT" not in name and "access token" not in name]


def test_a_project_without_tessera_urls_is_told_so(tmp_path, db):
    with override_settings(ROOT_URLCONF="tests.testapp.no_urls"), pytest.raises(CommandError):
        generate(tmp_path)
    assert not (tmp_path / tessera_postman.COLLECTION_FILE).exists()


def newman() -> Path:
    executable = NEWMAN_HOME / "node_modules" / ".bin" / "newman"
    if not executable.exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NEWMAN_HOME), "newman@6"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return executable


@pytest.mark.skipif(
    not (shutil.which("node") and shutil.which("npm")),
    reason="newman needs Node.js and npm, which this machine lacks",
)
def test_the_flow_runs_green_in_newman_against_the_demo(demo, tmp_path):
    out = tmp_path / "postman"
    demo.manage("tessera_postman", "--output", str(out), "--base-url", demo.origin)
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            str(newman()),
            "run",
            str(out / tessera_postman.COLLECTION_FILE),
            "--folder",
            "Flow",
            "--environment",
            str(out / tessera_postman.ENVIRONMENT_FILE),
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= len(FLOW) + 5
    assert stats["requests"]["total"] == len(FLOW)
