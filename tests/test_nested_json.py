"""Deeply nested JSON, in a JWT segment or a request body, is a 4xx, never a 500.

Python's json parser recurses once per level, so a few kilobytes of ``[`` raise
RecursionError. A JWT-shaped bearer token reaches the codec on every view that runs
JWTAuthentication, before any permission check: it must be refused like any other bad
token (401 with a challenge). A body reaches the parser of every endpoint: 400.
"""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tessera.authentication import JWTAuthentication
from tessera.tokens import jwt as codec

from .conftest import PASSWORD, auth_header
from .routes_support import Route, tessera_routes

pytestmark = pytest.mark.django_db

# Far deeper than the interpreter's recursion limit, yet within MAX_TOKEN_LENGTH once
# base64-encoded and within MAX_BODY_BYTES as a body.
DEPTH = 5000


def segment(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def header_bomb() -> str:
    token = f"{segment('[' * DEPTH)}.{segment('{}')}.c2ln"
    assert len(token) <= codec.MAX_TOKEN_LENGTH
    return token


def signed_payload_bomb() -> str:
    """Nested claims under a valid signature: only parsed once the signature checks."""
    key = codec.key_ring().active
    return jwt.api_jws.encode(
        ("[" * DEPTH).encode(),
        key.signing_key,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": "JWT"},
    )


@pytest.fixture
def client() -> APIClient:
    # A 500 must show as a response to assert on, not as the exception behind it.
    return APIClient(raise_request_exception=False)


def jwt_authenticated_routes() -> list[Route]:
    return [
        route
        for route in tessera_routes()
        if JWTAuthentication in route.view_class.authentication_classes
    ]


def test_routes_under_test_include_the_account_and_session_views():
    names = {route.name for route in jwt_authenticated_routes()}
    assert {
        "tessera:logout",
        "tessera:logout-all",
        "tessera:session-list",
        "tessera:me",
        "tessera:token-list",
    } <= names


@pytest.mark.parametrize("token", [header_bomb, signed_payload_bomb], ids=["header", "payload"])
@pytest.mark.parametrize("route", jwt_authenticated_routes(), ids=lambda route: route.name)
def test_nested_jwt_as_bearer_token_is_401(client, token, route):
    method = route.methods[0]
    response = getattr(client, method)(route.url(), **auth_header(token(), "Bearer"))
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", [header_bomb, signed_payload_bomb], ids=["header", "payload"])
@pytest.mark.parametrize(
    "name,field",
    [("jwt-verify", "token"), ("jwt-sliding-refresh", "token"), ("jwt-refresh", "refresh")],
)
def test_nested_jwt_in_the_body_of_the_jwt_endpoints_is_401(client, token, name, field):
    response = client.post(reverse(f"tessera:{name}"), {field: token()}, format="json")
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"]


def test_codec_refuses_a_recursion_error_from_pyjwt(monkeypatch):
    """Older PyJWT releases (2.10 among them) let json's RecursionError out of their parse."""

    def older_pyjwt(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    monkeypatch.setattr(codec.jwt, "decode", older_pyjwt)
    with pytest.raises(codec.InvalidJWT):
        codec.decode(signed_payload_bomb(), token_types=(codec.ACCESS,))


def nested(opening: str, closing: str, depth: int = DEPTH) -> str:
    """Valid JSON ``depth`` levels deep: the parser must recurse all the way down."""
    return opening * depth + "0" + closing * depth


BODIES = {"arrays": nested("[", "]"), "objects": nested('{"a":', "}")}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("name", ["login", "jwt-obtain", "register", "password-reset"])
def test_deeply_nested_body_is_a_parse_error(client, name, body):
    response = client.generic(
        "POST", reverse(f"tessera:{name}"), body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "parse_error"


def test_deeply_nested_body_is_a_parse_error_when_signed_in(client, user):
    login = client.post(
        reverse("tessera:login"), {"username": "alice", "password": PASSWORD}, format="json"
    )
    response = client.generic(
        "POST",
        reverse("tessera:password-change"),
        BODIES["arrays"],
        content_type="application/json",
        **auth_header(login.json()["token"]),
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize("depth", [50, 500])
def test_nesting_that_parses_is_a_validation_error(client, depth):
    body = json.dumps({"username": json.loads(nested("[", "]", depth)), "password": "x"})
    response = client.generic(
        "POST", reverse("tessera:login"), body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
