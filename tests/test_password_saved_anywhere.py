"""A password set through Django, not Tessera's endpoints (the admin's forms,
``changepassword``, ``set_password()`` then ``save()`` in code), ends every credential of
the user as ``password/change/`` does."""

from __future__ import annotations

from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from tessera.models import EventType, RevokeReason, SecurityEvent, Session, SessionKind
from tessera.services.sessions import open_session

from .conftest import (
    JWT_URL,
    LOGIN_URL,
    PASSWORD,
    PROTECTED_URL,
    auth_header,
    create_user,
    with_csrf,
)

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "An-entirely-new-passphrase-9"
ADMIN_INDEX = "/admin/"


def admin_browser(username: str) -> Client:
    browser = Client()
    response = browser.post("/admin/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    assert browser.get(ADMIN_INDEX).status_code == 200
    return browser


def admin_logged_in(browser: Client) -> bool:
    return browser.get(ADMIN_INDEX).status_code == 200


class Credentials:
    """One credential of every kind for ``username``, and whether each still works."""

    def __init__(self, username: str):
        api = APIClient()
        body = {"username": username, "password": PASSWORD}
        self.token = api.post(LOGIN_URL, body, format="json").json()["token"]
        pair = api.post(JWT_URL, body, format="json").json()
        self.access, self.refresh = pair["access"], pair["refresh"]
        user = get_user_model().objects.get(username=username)
        self.pat = open_session(user, kind=SessionKind.PAT, is_login=False, amr=()).token
        self.browser = APIClient(enforce_csrf_checks=True)
        login = self.browser.post(
            "/api/auth/session/login/", body, format="json", **with_csrf(self.browser)
        )
        assert login.status_code == 200, login.content
        self.admin = admin_browser(username)

    def working(self) -> dict[str, bool]:
        api = APIClient()
        refreshed = api.post("/api/auth/jwt/refresh/", {"refresh": self.refresh}, format="json")
        return {
            "token": api.get(PROTECTED_URL, **auth_header(self.token)).status_code == 200,
            "jwt": api.get(PROTECTED_URL, **auth_header(self.access, "Bearer")).status_code == 200,
            "refresh": refreshed.status_code == 200,
            "pat": api.get(PROTECTED_URL, **auth_header(self.pat)).status_code == 200,
            "browser": self.browser.get("/api/auth/me/").status_code == 200,
            "django_login": admin_logged_in(self.admin),
        }


ALL_WORK = dict.fromkeys(["token", "jwt", "refresh", "pat", "browser", "django_login"], True)
NONE_WORK = dict.fromkeys(ALL_WORK, False)


@pytest.fixture
def root(db):
    return create_user("root", email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def alice(db):
    return create_user("alice", email="alice@example.com", is_staff=True)


def revocations(user) -> int:
    return Session.objects.filter(user=user, revoke_reason=RevokeReason.PASSWORD_CHANGED).count()


def test_an_administrator_setting_another_users_password_ends_all_of_theirs(root, alice):
    credentials = Credentials("alice")
    assert credentials.working() == ALL_WORK
    admin = admin_browser("root")
    response = admin.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    assert credentials.working() == NONE_WORK
    assert admin_logged_in(admin)


def test_the_admins_own_password_change_keeps_its_login_and_ends_the_rest(root):
    credentials = Credentials("root")
    response = credentials.admin.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content
    assert credentials.working() == {**NONE_WORK, "django_login": True}
    kept = Session.objects.live().get(user=root)
    assert kept.kind == SessionKind.BROWSER


def test_the_changepassword_command_ends_every_session(alice):
    credentials = Credentials("alice")
    with mock.patch("getpass.getpass", return_value=NEW_PASSWORD):
        call_command("changepassword", "alice", stdout=StringIO())
    assert credentials.working() == NONE_WORK
    assert revocations(alice) == Session.objects.filter(user=alice).count()


def test_set_password_then_save_in_code_ends_every_session(alice):
    credentials = Credentials("alice")
    user = get_user_model().objects.get(pk=alice.pk)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert credentials.working() == NONE_WORK


def test_saving_other_fields_ends_nothing(alice):
    credentials = Credentials("alice")
    user = get_user_model().objects.get(pk=alice.pk)
    user.first_name = "Alice"
    user.save()
    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["first_name"])  # the new password is not written
    assert credentials.working() == ALL_WORK


def test_a_hasher_upgrade_at_login_is_no_password_change(alice, login):
    token = login()["token"]
    stored = get_user_model().objects.get(pk=alice.pk).password
    with mock.patch.object(MD5PasswordHasher, "must_update", return_value=True):
        assert get_user_model().objects.get(pk=alice.pk).check_password(PASSWORD)
    assert get_user_model().objects.get(pk=alice.pk).password != stored
    assert not Session.objects.filter(user=alice, revoked_at__isnull=False).exists()
    assert APIClient().get(PROTECTED_URL, **auth_header(token)).status_code == 200


def test_tesseras_own_change_revokes_once_and_keeps_the_callers_session(alice):
    credentials = Credentials("alice")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = APIClient().post(
        "/api/auth/password/change/", body, format="json", **auth_header(credentials.token)
    )
    assert response.status_code == 204
    assert credentials.working() == {**NONE_WORK, "token": True}
    revoked = Session.objects.filter(user=alice, revoked_at__isnull=False)
    assert revocations(alice) == revoked.count() == Session.objects.filter(user=alice).count() - 1
    events = SecurityEvent.objects.filter(user=alice, type=EventType.SESSION_REVOKED)
    assert events.count() == revoked.count()
    assert SecurityEvent.objects.filter(user=alice, type=EventType.PASSWORD_CHANGED).count() == 1
