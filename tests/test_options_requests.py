"""OPTIONS on every Tessera route, with every kind of credential, is never a 5xx.

DRF answers OPTIONS with a description of the POST/PUT fields, built from the view's
serializer, once the request passes the view's permissions: a view that reads no body
(logout) must still answer.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from .conftest import PASSWORD, auth_header
from .routes_support import tessera_routes

pytestmark = pytest.mark.django_db

CREDENTIALS = ["anonymous", "token", "jwt", "browser", "personal-access-token"]
# Routes whose views declare no request serializer: the ones that answered 500.
BODYLESS_POST_ROUTES = ["tessera:logout", "tessera:logout-all", "tessera:session-logout"]


def log_in(client: APIClient, name: str) -> dict:
    response = client.post(
        reverse(name), {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def signed_in_client(kind: str) -> APIClient:
    # A 500 must show as a response to assert on, not as the exception behind it.
    client = APIClient(raise_request_exception=False)
    if kind == "token":
        client.credentials(**auth_header(log_in(client, "tessera:login")["token"]))
    elif kind == "jwt":
        client.credentials(**auth_header(log_in(client, "tessera:jwt-obtain")["access"], "Bearer"))
    elif kind == "browser":
        client.get(reverse("tessera:csrf"))
        client.credentials(HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
        log_in(client, "tessera:session-login")
    elif kind == "personal-access-token":
        login = auth_header(log_in(client, "tessera:login")["token"])
        created = client.post(
            reverse("tessera:token-list"), {"name": "ci", "scopes": []}, format="json", **login
        )
        assert created.status_code == 201, created.content
        client.credentials(**auth_header(created.json()["token"]))
    return client


@pytest.fixture(params=CREDENTIALS)
def client(request, user) -> APIClient:
    return signed_in_client(request.param)


@pytest.mark.parametrize("route", tessera_routes(), ids=lambda route: route.name)
def test_options_is_never_a_server_error(client, route):
    response = client.options(route.url())
    assert response.status_code < 500, response.content
    if response.status_code != 200:
        assert "code" in response.json()


def test_the_routes_that_failed_are_covered():
    names = {route.name for route in tessera_routes()}
    assert set(BODYLESS_POST_ROUTES) <= names


@pytest.mark.parametrize(
    "kind,name",
    [
        ("token", "tessera:logout"),
        ("jwt", "tessera:logout-all"),
        ("browser", "tessera:logout"),
        ("browser", "tessera:session-logout"),
    ],
)
def test_signed_in_options_on_a_bodyless_post_describes_no_fields(user, kind, name):
    response = signed_in_client(kind).options(reverse(name))
    assert response.status_code == 200, response.content
    assert response.json()["actions"] == {"POST": {}}
