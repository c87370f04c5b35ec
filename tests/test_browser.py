"""SPA session login: CSRF on every unsafe request, key cycling, one Session per browser."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from tessera.models import RevokeReason, Session, SessionKind
from tessera.services.browser import SESSION_KEY

from .accounts_support import NEW_PASSWORD, snapshot
from .conftest import CREDENTIALS, PASSWORD, auth_header, get_protected, with_csrf

pytestmark = pytest.mark.django_db
LOGIN = "/api/auth/session/login/"
LOGOUT = "/api/auth/session/logout/"
ME = "/api/auth/me/"


def csrf_token(client) -> str:
    assert client.get("/api/auth/csrf/").status_code == 204
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def browser_login(client, username="alice", password=PASSWORD, **extra):
    token = csrf_token(client)
    return client.post(
        LOGIN,
        {"username": username, "password": password, **extra},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )


def unsafe(client, method, path, body=None):
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return getattr(client, method)(path, body, format="json", HTTP_X_CSRFTOKEN=token)


def test_csrf_endpoint_sets_the_cookie(browser):
    response = browser.get("/api/auth/csrf/")
    assert response.status_code == 204
    assert settings.CSRF_COOKIE_NAME in response.cookies


def test_login_opens_a_browser_session(browser, user):
    response = browser_login(browser, device_name="Firefox")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "alice"
    assert (body["session"]["kind"], body["session"]["device_name"]) == ("browser", "Firefox")
    assert body["session"]["current"] is True
    session = Session.objects.get()
    assert session.kind == SessionKind.BROWSER
    assert browser.session[SESSION_KEY] == session.token_digest
    assert "token" not in body
    assert browser.get(ME).json()["username"] == "alice"


def test_anonymous_login_post_needs_csrf(browser, user):
    browser.get("/api/auth/csrf/")
    before = snapshot()
    response = browser.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert snapshot() == before


def test_login_cycles_the_session_key_and_rotates_the_csrf_token(browser, user):
    token = csrf_token(browser)
    browser.session.save()
    old_key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    response = browser.post(
        LOGIN, {"username": "alice", "password": PASSWORD}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    assert browser.cookies[settings.SESSION_COOKIE_NAME].value != old_key
    new_token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    assert new_token != token
    # The pre-login token no longer passes (the secret behind it was rotated).
    refused = browser.post(LOGOUT, format="json", HTTP_X_CSRFTOKEN=token)
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")


def test_failed_login_looks_like_token_login(browser, user, hasher_calls):
    response = browser_login(browser, password="wrong-password")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    "body,field", [({"password": PASSWORD}, "username"), ({"username": "alice"}, "password")]
)
def test_login_bad_input(browser, user, body, field):
    token = csrf_token(browser)
    response = browser.post(LOGIN, body, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Session.objects.exists()


def test_unsafe_requests_with_the_session_need_csrf(browser, user):
    browser_login(browser)
    body = {"first_name": "Mallory"}
    refused = browser.patch(ME, body, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")
    user.refresh_from_db()
    assert user.first_name == ""
    assert unsafe(browser, "patch", ME, body).status_code == 200


def test_browser_session_is_listed_and_revoking_it_logs_the_browser_out(api, browser, user, login):
    browser_login(browser, device_name="Chrome")
    token = login(device_name="Phone")["token"]
    listed = api.get("/api/auth/sessions/", **auth_header(token)).json()
    browser_row = next(row for row in listed if row["kind"] == "browser")
    assert browser_row["device_name"] == "Chrome"
    assert browser.get(ME).status_code == 200
    revoked = api.delete(f"/api/auth/sessions/{browser_row['id']}/", **auth_header(token))
    assert revoked.status_code == 204
    response = browser.get(ME)
    assert response.status_code == 401
    # The Django session was flushed: the digest is gone from the cookie's session.
    assert SESSION_KEY not in browser.session


def test_logout_revokes_and_empties_the_session(browser, user):
    browser_login(browser)
    assert unsafe(browser, "post", LOGOUT).status_code == 204
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
    assert browser.get(ME).status_code == 401


def test_logout_needs_csrf(browser, user):
    browser_login(browser)
    response = browser.post(LOGOUT, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "csrf_failed")
    assert Session.objects.get().revoked_at is None


def test_logout_when_logged_out_is_401(browser):
    browser.get("/api/auth/csrf/")
    assert unsafe(browser, "post", LOGOUT).status_code == 401


def test_logging_in_again_replaces_the_browsers_session(browser, user):
    browser_login(browser)
    browser_login(browser)
    assert Session.objects.live().count() == 1
    assert Session.objects.filter(revoke_reason=RevokeReason.LOGOUT).count() == 1


def test_a_stale_cookie_does_not_block_a_new_login(browser, user, api, login):
    browser_login(browser)
    token = login()["token"]
    api.post("/api/auth/logout/all/", **auth_header(token))
    response = browser_login(browser)
    assert response.status_code == 200
    assert browser.get(ME).status_code == 200


def test_password_change_from_the_browser_keeps_the_browser(browser, user, api, login):
    browser_login(browser)
    token = login()["token"]
    response = unsafe(
        browser,
        "post",
        "/api/auth/password/change/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    assert browser.get(ME).status_code == 200
    assert api.get(ME, **auth_header(token)).status_code == 401


def test_deleting_the_account_from_the_browser_logs_it_out(browser, user):
    browser_login(browser)
    response = unsafe(browser, "delete", ME, {"password": PASSWORD})
    assert response.status_code == 204
    assert SESSION_KEY not in browser.session
    assert browser.get(ME).status_code == 401


def test_django_views_do_not_see_a_logged_in_user(browser, user):
    browser_login(browser)
    assert "_auth_user_id" not in browser.session


def test_a_token_digest_planted_in_the_session_is_not_a_browser_session(api, user, login):
    """Only sessions of kind ``browser`` are accepted from the cookie."""
    login()
    token_session = Session.objects.get()
    client = APIClient()
    store = client.session
    store[SESSION_KEY] = token_session.token_digest
    store.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    assert client.get(ME).status_code == 401


@override_settings(TESSERA={"EMAIL_VERIFICATION": "mandatory"})
def test_mandatory_verification_applies_to_browser_login(browser, user):
    response = browser_login(browser)
    assert (response.status_code, response.json()["code"]) == (403, "email_not_verified")
    assert not Session.objects.exists()


def test_browser_session_manages_sessions_like_any_device(browser, user, login):
    other_token = login()["token"]
    response = browser.post(
        "/api/auth/session/login/", CREDENTIALS, format="json", **with_csrf(browser)
    )
    assert response.status_code == 200
    csrf = browser.cookies["csrftoken"].value  # rotated on login
    listed = browser.get("/api/auth/sessions/").json()
    assert {row["kind"] for row in listed} == {"token", "browser"}
    token_row = next(row for row in listed if row["kind"] == "token")
    assert browser.delete(f"/api/auth/sessions/{token_row['id']}/").status_code == 403
    revoked = browser.delete(f"/api/auth/sessions/{token_row['id']}/", HTTP_X_CSRFTOKEN=csrf)
    assert revoked.status_code == 204
    assert get_protected(APIClient(), other_token).status_code == 401
    assert browser.post("/api/auth/logout/", HTTP_X_CSRFTOKEN=csrf).status_code == 204
    assert Session.objects.get(kind=SessionKind.BROWSER).revoke_reason == "logout"
    assert browser.get("/api/auth/sessions/").status_code == 401
