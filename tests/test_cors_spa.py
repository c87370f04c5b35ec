"""A SPA on another origin: CORS with credentials plus JWT cookie mode, as docs/jwt.md says."""

from __future__ import annotations

import pytest

from .conftest import CREDENTIALS, with_csrf

pytestmark = pytest.mark.django_db
SPA = "http://localhost:5173"


@pytest.fixture
def spa_settings(settings):
    """django-cors-headers for a page on another localhost port, and the cookies it needs."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "corsheaders"]
    settings.MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware", *settings.MIDDLEWARE]
    settings.CORS_ALLOWED_ORIGINS = [SPA]
    settings.CORS_ALLOW_CREDENTIALS = True
    settings.CSRF_TRUSTED_ORIGINS = [SPA]
    # Local HTTP only, as in the docs' example for a page served from localhost.
    settings.TESSERA = {**settings.TESSERA, "JWT_COOKIES": True, "JWT_COOKIE_SECURE": False}


def test_spa_on_another_port_logs_in_with_cookies(spa_settings, browser, user):
    preflight = browser.options(
        "/api/auth/jwt/",
        HTTP_ORIGIN=SPA,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-csrftoken",
    )
    assert preflight["Access-Control-Allow-Origin"] == SPA
    assert preflight["Access-Control-Allow-Credentials"] == "true"
    csrf = with_csrf(browser)
    login = browser.post("/api/auth/jwt/", CREDENTIALS, format="json", HTTP_ORIGIN=SPA, **csrf)
    assert login.status_code == 200
    assert login["Access-Control-Allow-Origin"] == SPA
    assert login.cookies["tessera_access"]["httponly"]
    protected = browser.get("/api/protected/", HTTP_ORIGIN=SPA)
    assert protected.status_code == 200
    logout = browser.post("/api/auth/logout/", HTTP_ORIGIN=SPA, **csrf)
    assert logout.status_code == 204


def test_untrusted_origin_cannot_post_with_the_cookies(spa_settings, browser, user):
    response = browser.post(
        "/api/auth/jwt/",
        CREDENTIALS,
        format="json",
        HTTP_ORIGIN="http://evil.localhost:9999",
        **with_csrf(browser),
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
