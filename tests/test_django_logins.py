"""Django's own logins (the admin, the browsable API's form) are Tessera browser sessions:
listed, revocable, and a browser whose session ended is logged out on its next request."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import Client

from tessera.errors import ServiceUnavailable
from tessera.models import EventType, SecurityEvent, Session, SessionKind
from tessera.services import browser as browser_service
from tessera.services import django_logins

from .conftest import PASSWORD, auth_header, create_user

pytestmark = pytest.mark.django_db
ADMIN_INDEX = "/admin/"


@pytest.fixture
def staff(db):
    return create_user("root", email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_browser(staff) -> Client:
    browser = Client()
    response = browser.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    assert browser.get(ADMIN_INDEX).status_code == 200
    return browser


def token_of(api, username: str = "root") -> str:
    body = {"username": username, "password": PASSWORD}
    return api.post("/api/auth/login/", body, format="json").json()["token"]


def assert_logged_out(browser: Client) -> None:
    response = browser.get(ADMIN_INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_admin_login_is_a_browser_session_listed_in_sessions(api, staff, admin_browser):
    listed = api.get("/api/auth/sessions/", **auth_header(token_of(api))).json()
    browser_sessions = [s for s in listed if s["kind"] == "browser"]
    assert [s["device_name"] for s in browser_sessions] == [django_logins.DEVICE_NAME]
    # One login, one event, one session.
    assert SecurityEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED, user=staff).count() == 2
    assert Session.objects.filter(user=staff, kind=SessionKind.BROWSER).count() == 1


def test_deleting_that_session_logs_the_browser_out_on_its_next_request(api, staff, admin_browser):
    token = token_of(api)
    browser_session = Session.objects.get(user=staff, kind=SessionKind.BROWSER)
    deleted = api.delete(f"/api/auth/sessions/{browser_session.pk}/", **auth_header(token))
    assert deleted.status_code == 204
    assert_logged_out(admin_browser)


@pytest.mark.parametrize("how", ["logout-all", "password-change", "deactivation"])
def test_everything_that_ends_sessions_ends_the_django_login(api, staff, admin_browser, how):
    token = token_of(api)
    if how == "logout-all":
        api.post("/api/auth/logout/all/", **auth_header(token))
    elif how == "password-change":
        body = {"current_password": PASSWORD, "new_password": "An-entirely-new-passphrase-9"}
        response = api.post("/api/auth/password/change/", body, format="json", **auth_header(token))
        assert response.status_code == 204
    else:
        staff.is_active = False
        staff.save()
    assert_logged_out(admin_browser)


def test_django_logout_ends_the_tessera_session(staff, admin_browser):
    assert admin_browser.post("/admin/logout/").status_code == 200
    session = Session.objects.get(user=staff, kind=SessionKind.BROWSER)
    assert (session.revoked_at is not None, session.revoke_reason) == (True, "logout")


def test_a_second_django_login_in_the_same_browser_replaces_the_first(staff, admin_browser):
    admin_browser.post("/admin/login/", {"username": "root", "password": PASSWORD})
    sessions = Session.objects.filter(user=staff, kind=SessionKind.BROWSER)
    assert sessions.count() == 2
    assert sessions.live().count() == 1


def test_a_django_login_of_a_user_with_a_second_factor_does_not_authenticate_the_api(api, staff):
    from .mfa_support import enable_totp

    enable_totp(staff)
    browser = Client()
    browser.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert browser.get(ADMIN_INDEX).status_code == 200
    # The password alone opened the admin; the API needs the second factor.
    assert browser.get("/api/auth/me/").status_code == 401
    assert Session.objects.get(user=staff, kind=SessionKind.BROWSER).revoked_at is None


def test_a_django_login_of_a_user_mfa_required_covers_does_not_authenticate_the_api(
    staff, settings
):
    settings.TESSERA = {**settings.TESSERA, "MFA_REQUIRED": "all"}
    browser = Client()
    browser.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert browser.get(ADMIN_INDEX).status_code == 200
    assert browser.get("/api/auth/me/").status_code == 401


def test_a_django_login_of_a_password_only_user_authenticates_the_api(staff, admin_browser):
    assert admin_browser.get("/api/auth/me/").json()["username"] == "root"


def test_a_session_login_as_another_user_ends_the_django_login_in_that_browser(
    staff, user, admin_browser
):
    admin_browser.get("/api/auth/csrf/")
    body = {"username": "alice", "password": PASSWORD}
    assert (
        admin_browser.post("/api/auth/session/login/", body, "application/json").status_code == 200
    )
    assert admin_browser.get("/api/auth/me/").json()["username"] == "alice"
    assert_logged_out(admin_browser)
    django_login = Session.objects.get(user=staff, kind=SessionKind.BROWSER)
    assert django_login.revoke_reason == "logout"


def test_a_session_login_as_the_same_user_keeps_the_django_login(staff, admin_browser):
    body = {"username": "root", "password": PASSWORD}
    assert (
        admin_browser.post("/api/auth/session/login/", body, "application/json").status_code == 200
    )
    assert admin_browser.get(ADMIN_INDEX).status_code == 200
    assert admin_browser.get("/api/auth/me/").json()["username"] == "root"
    assert Session.objects.filter(user=staff, kind=SessionKind.BROWSER).live().count() == 2


def test_tessera_logins_open_no_second_session(api, staff):
    token_of(api)
    assert Session.objects.filter(user=staff).count() == 1


def test_a_django_session_without_its_tessera_session_is_logged_out(staff, admin_browser):
    store = admin_browser.session
    del store[browser_service.DJANGO_LOGIN_KEY]
    store.save()
    assert_logged_out(admin_browser)


def test_a_django_session_of_another_users_session_is_logged_out(staff, admin_browser, api):
    other = create_user("eve", email="eve@example.com")
    token_of(api, "eve")
    store = admin_browser.session
    store[browser_service.DJANGO_LOGIN_KEY] = Session.objects.get(user=other).token_digest
    store.save()
    assert_logged_out(admin_browser)


def test_the_session_check_failing_closed_answers_503(staff, admin_browser, monkeypatch):
    def down(digest):
        raise ServiceUnavailable()

    monkeypatch.setattr(browser_service, "authenticate_digest", down)
    response = admin_browser.get(ADMIN_INDEX)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["code"] == "service_unavailable"


def test_a_session_store_that_cannot_be_read_answers_503(staff, admin_browser, monkeypatch):
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import OperationalError

    def down(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(SessionStore, "load", down)
    response = admin_browser.get(ADMIN_INDEX)
    assert response.status_code == 503
    assert response["Retry-After"]


def test_the_opt_out_leaves_django_logins_alone(settings, staff):
    settings.TESSERA = {**settings.TESSERA, "DJANGO_LOGIN_SESSIONS": False}
    browser = Client()
    browser.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert browser.get(ADMIN_INDEX).status_code == 200
    assert not Session.objects.exists()


def test_the_middleware_missing_is_a_warning(settings):
    assert "tessera.W005" not in {m.id for m in run_checks()}
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "tessera.middleware.DjangoLoginSessionMiddleware"
    ]
    assert "tessera.W005" in {m.id for m in run_checks()}
    settings.TESSERA = {**settings.TESSERA, "DJANGO_LOGIN_SESSIONS": False}
    assert "tessera.W005" not in {m.id for m in run_checks()}


# --- The browsable API's login -------------------------------------------------------


def test_the_browsable_api_logs_in_as_a_tessera_session_and_shows_the_user(user):
    browser = Client()
    page = browser.get("/api-auth/login/")
    assert page.status_code == 200
    assert b"csrfmiddlewaretoken" in page.content
    response = browser.post(
        "/api-auth/login/?next=/api/auth/me/", {"username": "alice", "password": PASSWORD}
    )
    assert (response.status_code, response["Location"]) == (302, "/api/auth/me/")
    # Tessera's endpoints accept browser sessions (a project lists SessionAuthentication
    # in DEFAULT_AUTHENTICATION_CLASSES for its own views, as the demo does).
    html = browser.get("/api/auth/me/", HTTP_ACCEPT="text/html")
    assert html.status_code == 200
    assert b"alice" in html.content
    assert Session.objects.get(user=user).kind == SessionKind.BROWSER


def test_without_next_the_browsable_login_lands_on_the_site_root(user):
    response = Client().post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/")


def test_without_next_the_browsable_login_follows_the_projects_redirect(user, settings):
    settings.LOGIN_REDIRECT_URL = "/dashboard/"
    response = Client().post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/dashboard/")


def test_the_demo_page_links_the_browsable_login_with_a_next_page():
    page = (Path(__file__).parent.parent / "example/demo/templates/demo/index.html").read_text()
    assert 'href="/api-auth/login/?next=/api/auth/me/"' in page


def test_the_browsable_login_refuses_a_wrong_password_and_opens_nothing(user, hasher_calls):
    browser = Client()
    page = browser.post("/api-auth/login/", {"username": "alice", "password": "wrong"})
    assert page.status_code == 200
    assert b"Please enter a correct" in page.content
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()


def test_the_browsable_login_is_locked_out_like_every_login(user, settings):
    settings.TESSERA = {**settings.TESSERA, "LOCKOUT_RATES": {"account": "2/min"}}
    browser = Client()
    for _ in range(2):
        browser.post("/api-auth/login/", {"username": "alice", "password": "wrong"})
    page = browser.post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 200
    assert b"too many failed login attempts" in page.content.lower()
    assert not Session.objects.exists()


def test_a_user_with_a_second_factor_is_sent_to_the_api(alice_mfa):
    browser = Client()
    page = browser.post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    assert b"second factor" in page.content
    assert not Session.objects.exists()


def test_the_browsable_logout_ends_the_session(user):
    browser = Client()
    browser.post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    browser.post("/api-auth/logout/")
    assert Session.objects.get(user=user).revoke_reason == "logout"
    assert browser.get("/api/auth/me/", HTTP_ACCEPT="application/json").status_code == 401


def test_the_browsable_login_needs_its_csrf_token(user):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert not Session.objects.exists()
