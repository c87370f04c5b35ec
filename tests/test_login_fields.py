"""LOGIN_FIELDS means what it says, on every login path, at one password hash per attempt.

``("email",)``: only an address names the account; ``("username",)``: only the login name.
An identifier ruled out answers exactly like an unknown user, hasher included.
"""

from __future__ import annotations

import base64

import pytest
from django.test import override_settings

from tessera.models import Session

from .authz_support import token_for
from .conftest import PASSWORD, auth_header

pytestmark = pytest.mark.django_db
EMAIL_ONLY = {"LOGIN_FIELDS": ("email",)}
USERNAME_ONLY = {"LOGIN_FIELDS": ("username",)}
REFUSED = {
    "code": "invalid_credentials",
    "detail": "Unable to log in with the provided credentials.",
}


def log_in(api, identifier, password=PASSWORD, url="/api/auth/login/"):
    return api.post(url, {"username": identifier, "password": password}, format="json")


@pytest.mark.parametrize(
    "settings_,identifier",
    [
        (EMAIL_ONLY, "alice"),  # a username, with ("email",)
        (EMAIL_ONLY, "nobody@example.com"),  # an unknown address
        (EMAIL_ONLY, "nobody"),  # an unknown name
        (USERNAME_ONLY, "alice@example.com"),  # an address, with ("username",)
        (USERNAME_ONLY, "ALICE@example.com"),
        (USERNAME_ONLY, "nobody"),  # an unknown user
    ],
)
def test_an_identifier_the_setting_rules_out_fails_like_an_unknown_user(
    api, user, hasher_calls, settings_, identifier
):
    with override_settings(TESSERA=settings_):
        response = log_in(api, identifier)
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    "settings_,identifier",
    [
        (EMAIL_ONLY, "alice@example.com"),
        (EMAIL_ONLY, "ALICE@Example.com"),
        (USERNAME_ONLY, "alice"),
    ],
)
def test_the_allowed_field_logs_in_with_one_hash(api, user, hasher_calls, settings_, identifier):
    with override_settings(TESSERA=settings_):
        response = log_in(api, identifier)
    assert response.status_code == 200, response.content
    assert hasher_calls.call_count == 1


@override_settings(TESSERA=EMAIL_ONLY)
def test_a_username_that_looks_like_an_address_is_still_a_username(
    api, django_user_model, hasher_calls
):
    django_user_model.objects.create_user("bob@example.com", "robert@example.net", PASSWORD)
    hasher_calls.reset_mock()
    response = log_in(api, "bob@example.com")
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert hasher_calls.call_count == 1
    assert log_in(api, "robert@example.net").status_code == 200


@override_settings(TESSERA=USERNAME_ONLY)
def test_with_usernames_only_an_address_shaped_name_logs_in(api, django_user_model):
    django_user_model.objects.create_user("bob@example.com", "robert@example.net", PASSWORD)
    assert log_in(api, "bob@example.com").status_code == 200
    assert log_in(api, "robert@example.net").status_code == 401


@pytest.mark.parametrize("url", ["/api/auth/jwt/", "/api/auth/session/login/"])
def test_every_login_endpoint_follows_the_setting(api, user, hasher_calls, url):
    with override_settings(TESSERA=EMAIL_ONLY):
        assert log_in(api, "alice", url=url).status_code == 401
        assert hasher_calls.call_count == 1
        assert log_in(api, "alice@example.com", url=url).status_code == 200
    with override_settings(TESSERA=USERNAME_ONLY):
        assert log_in(api, "alice@example.com", url=url).status_code == 401
        assert log_in(api, "alice", url=url).status_code == 200


@pytest.mark.parametrize(
    "settings_,refused,accepted",
    [
        (EMAIL_ONLY, "alice", "alice@example.com"),
        (USERNAME_ONLY, "alice@example.com", "alice"),
    ],
)
def test_http_basic_follows_the_setting(api, user, hasher_calls, settings_, refused, accepted):
    def basic(identifier):
        raw = f"{identifier}:{PASSWORD}".encode()
        return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(raw).decode("ascii")}

    with override_settings(TESSERA={**settings_, "BASIC_AUTH": True}):
        assert api.get("/api/auth/me/", secure=True, **basic(refused)).status_code == 401
        assert hasher_calls.call_count == 1
        assert api.get("/api/auth/me/", secure=True, **basic(accepted)).status_code == 200


@pytest.mark.parametrize("settings_", [EMAIL_ONLY, USERNAME_ONLY])
def test_a_personal_token_password_check_names_the_user_as_the_setting_allows(
    api, user, clock, settings_
):
    token = token_for(user)
    clock.advance(minutes=11)  # past PAT_FRESH_LOGIN: the password is needed
    body = {"name": "ci", "scopes": [], "password": PASSWORD}
    with override_settings(TESSERA=settings_):
        response = api.post("/api/auth/tokens/", body, format="json", **auth_header(token))
    assert response.status_code == 201, response.content


def test_the_default_accepts_both(api, user):
    assert log_in(api, "alice").status_code == 200
    assert log_in(api, "alice@example.com").status_code == 200
