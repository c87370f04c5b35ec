"""The seed client's flow: login → protected → logout → 401; logout/all kills every device."""

from __future__ import annotations

import pytest

from tessera.models import RevokeReason, Session

from .conftest import LOGIN_URL, PASSWORD, auth_header, get_protected, post_login

pytestmark = pytest.mark.django_db


def test_login_returns_token_expiry_user_and_session(api, user):
    response = post_login(api, device_name="Phone")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry", "user", "session", "device"}
    assert body["token"].startswith("tsr1_") and len(body["token"]) == 48
    assert body["user"]["username"] == "alice"
    assert body["session"]["device_name"] == "Phone"
    assert body["session"]["kind"] == "token"
    assert body["session"]["current"] is True
    assert Session.objects.get().user == user


def test_login_by_email(api, user):
    body = {"email": "ALICE@example.com", "password": PASSWORD}
    response = api.post(LOGIN_URL, body, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token", "BEARER"])
def test_seed_flow(api, user, login, keyword):
    token = login()["token"]
    assert get_protected(api, token, keyword).status_code == 200
    assert api.post("/api/auth/logout/", **auth_header(token, keyword)).status_code == 204
    response = get_protected(api, token, keyword)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT


def test_logout_all_kills_every_device(api, user, login):
    tokens = [login(device_name=f"device {i}")["token"] for i in range(3)]
    for token in tokens:
        assert get_protected(api, token).status_code == 200
    assert api.post("/api/auth/logout/all/", **auth_header(tokens[0])).status_code == 204
    for token in tokens:
        assert get_protected(api, token).status_code == 401
    assert set(Session.objects.values_list("revoke_reason", flat=True)) == {RevokeReason.LOGOUT_ALL}


def test_anonymous_protected_is_401_with_challenge(api):
    response = api.get("/api/protected/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token realm="api"'
    assert response.json() == {
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }
