"""Every Tessera endpoint answers a browser (Accept: text/html) under DRF's browsable API
renderer, as projects that keep it enabled serve it."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.views import APIView

from .conftest import auth_header
from .routes_support import tessera_routes

pytestmark = pytest.mark.django_db
GET_ROUTES = [route for route in tessera_routes() if "get" in route.methods]


@pytest.fixture
def browsable_api():
    with mock.patch.object(APIView, "renderer_classes", [JSONRenderer, BrowsableAPIRenderer]):
        yield


@pytest.mark.parametrize("route", GET_ROUTES, ids=[route.name for route in GET_ROUTES])
def test_every_get_endpoint_renders_as_html_while_logged_in(api, user, login, route, browsable_api):
    token = login()["token"]
    response = api.get(route.url(), HTTP_ACCEPT="text/html", **auth_header(token))
    assert response.status_code < 500, response.content[:500]
    if response.status_code == 200:
        assert response["Content-Type"].startswith("text/html")
