"""Cookie mode: HttpOnly token cookies, CSRF on everything a browser sends by itself."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tessera.models import Session

from .conftest import CREDENTIALS, auth_header, with_csrf

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("cookie_mode"),
]


@pytest.fixture
def cookie_mode():
    with override_settings(TESSERA={"JWT_COOKIES": True, "JWT_COOKIE_SECURE": False}):
        yield


def test_login_without_csrf_is_403(browser, user):
    response = browser.post("/api/auth/jwt/", CREDENTIALS, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert not Session.objects.exists()


def test_login_sets_httponly_cookies(browser, user):
    response = browser.post("/api/auth/jwt/", CREDENTIALS, format="json", **with_csrf(browser))
    assert response.status_code == 200
    access, refresh = response.cookies["tessera_access"], response.cookies["tessera_refresh"]
    for cookie in (access, refresh):
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert refresh["path"] == "/api/auth/jwt/refresh/"
    assert access.value == response.json()["access"]


def test_secure_flag_is_on_by_default(browser, user):
    with override_settings(TESSERA={"JWT_COOKIES": True}):
        response = browser.post(
            "/api/auth/jwt/",
            CREDENTIALS,
            format="json",
            secure=True,
            **with_csrf(browser),
            HTTP_REFERER="https://testserver/",
        )
    assert response.cookies["tessera_access"]["secure"]


def test_cookie_authenticates_safe_requests_without_csrf(browser, user):
    browser.post("/api/auth/jwt/", CREDENTIALS, format="json", **with_csrf(browser))
    assert browser.get("/api/protected/").status_code == 200


def test_unsafe_cookie_request_needs_csrf(browser, user):
    browser.post("/api/auth/jwt/", CREDENTIALS, format="json", **with_csrf(browser))
    browser.cookies.pop("csrftoken")
    refused = browser.post("/api/auth/logout/")
    assert refused.status_code == 403
    assert Session.objects.get().revoked_at is None
    response = browser.post("/api/auth/logout/", **with_csrf(browser))
    assert response.status_code == 204
    assert response.cookies["tessera_access"].value == ""
    assert response.cookies["tessera_refresh"].value == ""
    assert Session.objects.get().revoked_at is not None


def test_refresh_from_cookie_needs_csrf_and_rotates_cookies(browser, user):
    login = browser.post("/api/auth/jwt/", CREDENTIALS, format="json", **with_csrf(browser))
    browser.cookies.pop("csrftoken")
    assert browser.post("/api/auth/jwt/refresh/", {}, format="json").status_code == 403
    response = browser.post("/api/auth/jwt/refresh/", {}, format="json", **with_csrf(browser))
    assert response.status_code == 200
    assert response.cookies["tessera_refresh"].value != login.cookies["tessera_refresh"].value


def test_header_token_is_not_subject_to_csrf(browser, user):
    with override_settings(TESSERA={}):
        access = browser.post("/api/auth/jwt/", CREDENTIALS, format="json").json()["access"]
    response = browser.post("/api/auth/logout/", **auth_header(access, "Bearer"))
    assert response.status_code == 204
