"""The demo's cross-origin SPA set-up: CORS with credentials plus JWT cookie mode."""

from __future__ import annotations

import importlib
import os
from unittest import mock

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import override_settings
from rest_framework.test import APIClient

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
SPA = "http://localhost:5173"


@pytest.fixture
def spa_settings():
    import demo.settings

    names = ["INSTALLED_APPS", "MIDDLEWARE", "CORS_ALLOWED_ORIGINS", "CORS_ALLOW_CREDENTIALS",
             "CSRF_TRUSTED_ORIGINS", "TESSERA"]
    with mock.patch.dict(os.environ, {"DEMO_SPA_ORIGINS": SPA}):
        configured = importlib.reload(demo.settings)
        overrides = {name: getattr(configured, name) for name in names}
    importlib.reload(demo.settings)  # leave the module as the other tests expect it
    with override_settings(**overrides):
        yield


def test_spa_on_another_port_logs_in_with_cookies(spa_settings, user):
    browser = APIClient(enforce_csrf_checks=True)
    preflight = browser.options(
        "/api/auth/jwt/", HTTP_ORIGIN=SPA, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-csrftoken",
    )
    assert preflight["Access-Control-Allow-Origin"] == SPA
    assert preflight["Access-Control-Allow-Credentials"] == "true"
    csrf = _get_new_csrf_string()
    browser.cookies["csrftoken"] = csrf
    login = browser.post(
        "/api/auth/jwt/", {"username": "alice", "password": PASSWORD}, format="json",
        HTTP_ORIGIN=SPA, HTTP_X_CSRFTOKEN=csrf,
    )
    assert login.status_code == 200
    assert login["Access-Control-Allow-Origin"] == SPA
    assert login.cookies["tessera_access"]["httponly"]
    protected = browser.get("/api/protected/", HTTP_ORIGIN=SPA)
    assert protected.status_code == 200
    logout = browser.post("/api/auth/logout/", HTTP_ORIGIN=SPA, HTTP_X_CSRFTOKEN=csrf)
    assert logout.status_code == 204


def test_untrusted_origin_cannot_post_with_the_cookies(spa_settings, user):
    browser = APIClient(enforce_csrf_checks=True)
    csrf = _get_new_csrf_string()
    browser.cookies["csrftoken"] = csrf
    response = browser.post(
        "/api/auth/jwt/", {"username": "alice", "password": PASSWORD}, format="json",
        HTTP_ORIGIN="http://evil.localhost:9999", HTTP_X_CSRFTOKEN=csrf,
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
