"""The OpenAPI schema documents every Tessera endpoint, its bodies and its security."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_every_tessera_route_is_documented(schema):
    from django.urls import get_resolver

    tessera = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/auth/")
    documented = set(schema["paths"])
    for pattern in tessera.url_patterns:
        path = "/api/auth/" + str(pattern.pattern).replace("<str:", "{").replace(">", "}")
        assert path in documented, path


def test_security_schemes_are_described(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tesseraToken"]["in"] == "header"
    assert schemes["tesseraJWT"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["tesseraSession"]["in"] == "cookie"
    logout = schema["paths"]["/api/auth/logout/"]["post"]
    assert {"tesseraToken": []} in logout["security"]


@pytest.mark.parametrize(
    "path,method,status",
    [
        ("/api/auth/login/", "post", "200"),
        ("/api/auth/jwt/", "post", "200"),
        ("/api/auth/jwt/refresh/", "post", "200"),
        ("/api/auth/tokens/", "post", "201"),
        ("/api/auth/register/", "post", "201"),
        ("/api/auth/password/reset/", "post", "202"),
    ],
)
def test_bodies_and_errors_are_declared(schema, path, method, status):
    operation = schema["paths"][path][method]
    assert "requestBody" in operation
    assert status in operation["responses"]
    assert any(code.startswith("4") for code in operation["responses"])


def test_swagger_ui_page_is_served(api):
    assert api.get("/api/docs/").status_code == 200
