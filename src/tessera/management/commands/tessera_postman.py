"""``manage.py tessera_postman --output DIR``: a Postman collection of Tessera's endpoints.

Generated from the project's OpenAPI schema (drf-spectacular), so it follows wherever
the project mounts Tessera and whatever it leaves out. Two folders: "Flow", which runs
top to bottom in Postman's runner or newman (sign up, log in, call the API, list
sessions, JWT, refresh, verify, log out, the old token refused), its test scripts keeping
the credentials in the environment; and "Reference", every operation by tag, with an
example body.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse

from ...conf import tessera_settings

SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
COLLECTION_FILE = "tessera.postman_collection.json"
ENVIRONMENT_FILE = "tessera.postman_environment.json"
ENVIRONMENT_KEYS = ("base_url", "auth_token", "access", "refresh", "username", "email", "password")
# Postman masks these in its interface and leaves them out of shared workspaces.
SECRET_KEYS = frozenset({"auth_token", "access", "refresh", "password"})
# Example values of body fields, by name: the flow's credentials come from the environment.
PLACEHOLDERS = {
    "username": "{{username}}",
    "email": "{{email}}",
    "password": "{{password}}",
    "current_password": "{{password}}",
    "refresh": "{{refresh}}",
    "token": "{{access}}",
    "device_name": "Postman",
}

NEW_ACCOUNT = """\
const stamp = Date.now();
pm.environment.set("username", "postman" + stamp);
pm.environment.set("email", "postman" + stamp + "@example.com");
const nonce = Math.random().toString(36).slice(2);
pm.environment.set("password", "Correct-horse-" + nonce + "-staple");"""


# Cookie mode (JWT_COOKIES) asks the JWT login and refresh for a CSRF token, as a browser
# would send it: the csrftoken cookie (kept in the runner's cookie jar) and its header.
CSRF_TOKEN = """\
pm.sendRequest(pm.environment.get("base_url") + "{path}", (error, response) => {{
    if (error) throw error;
    const token = (/csrftoken=([^;]+)/.exec(response.headers.get("Set-Cookie") || "") || [])[1];
    pm.request.headers.upsert({{key: "Cookie", value: "csrftoken=" + token}});
    pm.request.headers.upsert({{key: "X-CSRFToken", value: token}});
}});"""
NEEDS_CSRF_IN_COOKIE_MODE = {"tessera:jwt-obtain", "tessera:jwt-refresh"}


def status_test(code: int) -> str:
    return f'pm.test("answers {code}", () => pm.response.to.have.status({code}));'


# The flow: (name, URL name, method, body, auth, test script lines).
FLOW: list[tuple[str, str, str, dict | None, str | None, list[str]]] = [
    (
        "Sign up",
        "tessera:register",
        "POST",
        {"username": "{{username}}", "email": "{{email}}", "password": "{{password}}"},
        None,
        [status_test(201)],
    ),
    (
        "Log in (opaque token)",
        "tessera:login",
        "POST",
        {"username": "{{username}}", "password": "{{password}}", "device_name": "Postman"},
        None,
        [
            status_test(200),
            'pm.test("returns a token", () => '
            'pm.expect(pm.response.json().token).to.be.a("string"));',
            'pm.environment.set("auth_token", pm.response.json().token);',
        ],
    ),
    (
        "Call a protected endpoint (me/)",
        "tessera:me",
        "GET",
        None,
        "{{auth_token}}",
        [
            status_test(200),
            'pm.test("is the new user", () => '
            'pm.expect(pm.response.json().username).to.eql(pm.environment.get("username")));',
        ],
    ),
    (
        "List my sessions",
        "tessera:session-list",
        "GET",
        None,
        "{{auth_token}}",
        [
            status_test(200),
            'pm.test("this session is current", () => '
            "pm.expect(pm.response.json().filter(s => s.current).length).to.eql(1));",
        ],
    ),
    (
        "Log in (JWT pair)",
        "tessera:jwt-obtain",
        "POST",
        {"username": "{{username}}", "password": "{{password}}"},
        None,
        [
            status_test(200),
            'pm.environment.set("access", pm.response.json().access);',
            'pm.environment.set("refresh", pm.response.json().refresh);',
        ],
    ),
    (
        "Refresh the JWT pair (rotated)",
        "tessera:jwt-refresh",
        "POST",
        {"refresh": "{{refresh}}"},
        None,
        [
            status_test(200),
            'pm.test("rotates the refresh token", () => '
            'pm.expect(pm.response.json().refresh).to.not.eql(pm.environment.get("refresh")));',
            'pm.environment.set("access", pm.response.json().access);',
            'pm.environment.set("refresh", pm.response.json().refresh);',
        ],
    ),
    (
        "Verify the access token",
        "tessera:jwt-verify",
        "POST",
        {"token": "{{access}}"},
        None,
        [status_test(200)],
    ),
    ("Log out", "tessera:logout", "POST", None, "{{auth_token}}", [status_test(204)]),
    (
        "The old token is refused",
        "tessera:session-list",
        "GET",
        None,
        "{{auth_token}}",
        [
            status_test(401),
            'pm.test("says why", () => pm.expect(pm.response.json().code).to.be.a("string"));',
        ],
    ),
]


class Command(BaseCommand):
    help = (
        "Write a Postman v2.1 collection of Tessera's endpoints (from the OpenAPI schema) "
        "and an environment (base_url, auth_token, access, refresh) into --output."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="Folder to write both files into.")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="The environment's base_url (default http://127.0.0.1:8000).",
        )

    def handle(self, *args, output: str, base_url: str, **options):
        try:
            from drf_spectacular.generators import SchemaGenerator
        except ImportError as exc:
            raise CommandError(
                "tessera_postman reads the OpenAPI schema: install drf-tessera[openapi] and "
                "add drf_spectacular to INSTALLED_APPS."
            ) from exc
        generator = SchemaGenerator()
        schema = generator.get_schema(request=None, public=True)
        tessera_operations = {
            (path, method.lower())
            for path, _regex, method, callback in generator.endpoints
            if getattr(callback, "cls", type).__module__.startswith("tessera.")
        }
        if not tessera_operations:
            raise CommandError("No Tessera endpoint is mounted in this project's URLs.")
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        collection = build_collection(schema, tessera_operations)
        environment = build_environment(base_url.rstrip("/"))
        (folder / COLLECTION_FILE).write_text(json.dumps(collection, indent=2) + "\n")
        (folder / ENVIRONMENT_FILE).write_text(json.dumps(environment, indent=2) + "\n")
        self.stdout.write(
            f"Wrote {folder / COLLECTION_FILE} ({len(tessera_operations)} operations) and "
            f"{folder / ENVIRONMENT_FILE}."
        )


def build_collection(schema: dict, operations: set[tuple[str, str]]) -> dict:
    components = schema.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[dict]] = {}
    for path, method in sorted(operations):
        operation = schema["paths"].get(path, {}).get(method)
        if operation is None:
            continue
        tag = (operation.get("tags") or ["tessera"])[0]
        by_tag.setdefault(tag, []).append(reference_item(path, method, operation, components))
    return {
        "info": {
            "_postman_id": str(uuid.uuid4()),
            "name": f"{schema.get('info', {}).get('title', 'API')}: Tessera",
            "description": (
                "Tessera's endpoints, generated by manage.py tessera_postman. Run the Flow "
                "folder top to bottom with the environment beside this file."
            ),
            "schema": SCHEMA_URL,
        },
        "item": [
            {"name": "Flow", "item": flow_items()},
            {
                "name": "Reference",
                "item": [{"name": tag, "item": items} for tag, items in sorted(by_tag.items())],
            },
        ],
        "variable": [],
    }


def flow_items() -> list[dict]:
    items = []
    csrf_script = None
    if tessera_settings.JWT_COOKIES:
        csrf_script = CSRF_TOKEN.format(path=reverse("tessera:csrf")).splitlines()
    for index, (name, url_name, method, body, token, tests) in enumerate(FLOW):
        try:
            path = reverse(url_name)
        except NoReverseMatch:
            # The project does not mount this feature: the flow goes on without that step.
            continue
        events = [script_event("test", tests)]
        if index == 0:
            events.insert(0, script_event("prerequest", NEW_ACCOUNT.splitlines()))
        if csrf_script and url_name in NEEDS_CSRF_IN_COOKIE_MODE:
            events.insert(0, script_event("prerequest", csrf_script))
        items.append({"name": name, "event": events, "request": request(method, path, body, token)})
    return items


def reference_item(path: str, method: str, operation: dict, components: dict) -> dict:
    secured = any(requirement for requirement in operation.get("security", [{}]))
    body = None
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = example(content["application/json"].get("schema", {}), components)
    postman_path = re.sub(r"\{(\w+)\}", r":\1", path)
    item = {
        "name": operation.get("summary") or f"{method.upper()} {path}",
        "request": request(
            method.upper(), postman_path, body, "{{auth_token}}" if secured else None
        ),
    }
    item["request"]["description"] = operation.get("description", "")
    variables = re.findall(r"\{(\w+)\}", path)
    if variables:
        item["request"]["url"]["variable"] = [{"key": name, "value": ""} for name in variables]
    return item


def request(method: str, path: str, body: Any, token: str | None) -> dict:
    segments = [segment for segment in path.split("/") if segment]
    # Postman keeps a trailing slash as an empty last segment; without it Django would
    # answer a POST with a redirect it cannot follow (APPEND_SLASH).
    if path.endswith("/"):
        segments.append("")
    raw = "{{base_url}}/" + "/".join(segments)
    result: dict[str, Any] = {
        "method": method,
        "header": [{"key": "Accept", "value": "application/json"}],
        "url": {"raw": raw, "host": ["{{base_url}}"], "path": segments},
    }
    if token:
        result["auth"] = {
            "type": "bearer",
            "bearer": [{"key": "token", "value": token, "type": "string"}],
        }
    else:
        result["auth"] = {"type": "noauth"}
    if body is not None:
        result["header"].append({"key": "Content-Type", "value": "application/json"})
        result["body"] = {
            "mode": "raw",
            "raw": json.dumps(body, indent=2),
            "options": {"raw": {"language": "json"}},
        }
    return result


def script_event(listen: str, lines: list[str]) -> dict:
    return {"listen": listen, "script": {"type": "text/javascript", "exec": lines}}


def example(schema: dict, components: dict, depth: int = 0) -> Any:
    """An example value for ``schema``: the flow's placeholders by field name, the
    schema's own example or first choice, else a value of the right type."""
    if depth > 5:
        return None
    if "$ref" in schema:
        return example(components.get(schema["$ref"].rsplit("/", 1)[-1], {}), components, depth + 1)
    for combined in ("allOf", "oneOf", "anyOf"):
        if schema.get(combined):
            return example(schema[combined][0], components, depth + 1)
    if "example" in schema:
        return schema["example"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: PLACEHOLDERS.get(name, example(field, components, depth + 1))
            for name, field in schema.get("properties", {}).items()
            if not field.get("readOnly")
        }
    if kind == "array":
        return []
    return {"integer": 0, "number": 0, "boolean": False}.get(kind, "")


def build_environment(base_url: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "name": "Tessera",
        "values": [
            {
                "key": key,
                "value": base_url if key == "base_url" else "",
                "type": "secret" if key in SECRET_KEYS else "default",
                "enabled": True,
            }
            for key in ENVIRONMENT_KEYS
        ],
        "_postman_variable_scope": "environment",
    }
