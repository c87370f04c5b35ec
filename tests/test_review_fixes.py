"""Defects found in review, each pinned by a test that failed before its fix."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import caches
from django.db import connection
from django.test import override_settings

from tessera.checks import check_atomic_requests, check_settings
from tessera.models import RefreshToken, RevokeReason, Session, ThrottleCounter
from tessera.services.sessions import open_session
from tessera.tokens import opaque

from .conftest import PASSWORD, auth_header

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-brand-new-passw0rd!"


@pytest.fixture
def atomic_requests(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)


# Without the test-wide transaction, as in production: what a request commits stays.
in_production_transactions = pytest.mark.django_db(transaction=True)


def jwt_pair(api):
    body = {"username": "alice", "password": PASSWORD}
    return api.post("/api/auth/jwt/", body, format="json").json()


@in_production_transactions
def test_reuse_revocation_survives_atomic_requests(api, user, clock, atomic_requests):
    pair = jwt_pair(api)
    successor = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    clock.advance(seconds=30)
    reused = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert reused.json()["code"] == "token_reused"
    assert Session.objects.get().revoke_reason == RevokeReason.TOKEN_REUSED
    thief = api.post(
        "/api/auth/jwt/refresh/", {"refresh": successor.json()["refresh"]}, format="json"
    )
    assert thief.status_code == 401


@in_production_transactions
@override_settings(TESSERA={"THROTTLE_BACKEND": "database",
                            "LOGIN_THROTTLE_RATES": {"ip": None, "username": "3/min"}})
def test_database_throttle_counts_survive_atomic_requests(api, user, atomic_requests):
    for _ in range(3):
        api.post("/api/auth/login/", {"username": "alice", "password": "x"}, format="json")
    assert ThrottleCounter.objects.get().count == 3
    response = api.post(
        "/api/auth/login/", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429


def test_atomic_requests_with_database_throttle_warns(atomic_requests):
    with override_settings(TESSERA={"THROTTLE_BACKEND": "database"}):
        assert [m.id for m in check_atomic_requests()] == ["tessera.W003"]
    assert check_atomic_requests() == []


def test_password_change_voids_a_pending_email_change(api, user, login):
    intruder = login()["token"]
    response = api.patch(
        "/api/auth/me/", {"email": "evil@attacker.test", "current_password": PASSWORD},
        format="json", **auth_header(intruder),
    )
    assert response.status_code == 200
    key = re.search(r"verify-email/([A-Za-z0-9_-]{43})", mail.outbox[-1].body).group(1)
    owner = login()["token"]
    changed = api.post(
        "/api/auth/password/change/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json", **auth_header(owner),
    )
    assert changed.status_code == 204
    refused = api.post("/api/auth/email/verify/", {"key": key}, format="json")
    assert refused.json()["code"] == "invalid_key"
    user.refresh_from_db()
    assert user.email == "alice@example.com"


@override_settings(TESSERA={"JWT_REVOCATION_CHECK": False})
def test_logout_ends_the_session_in_stateless_jwt_mode(api, user):
    pair = jwt_pair(api)
    assert api.post("/api/auth/logout/", **auth_header(pair["access"], "Bearer")).status_code == 204
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
    refreshed = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 401


def test_cleanup_keeps_the_live_successor_of_an_expired_refresh_token(api, user, clock):
    from django.core.management import call_command

    pair = jwt_pair(api)
    clock.advance(hours=12)
    current = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    clock.advance(hours=13)  # the first refresh token has expired; its successor has not
    call_command("tessera_clearsessions", stdout=None)
    assert RefreshToken.objects.count() == 1
    again = api.post(
        "/api/auth/jwt/refresh/", {"refresh": current.json()["refresh"]}, format="json"
    )
    assert again.status_code == 200


@override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.AllowAllUsersModelBackend"])
def test_inactive_users_are_refused_whatever_the_backend(api, django_user_model, hasher_calls):
    django_user_model.objects.create_user("carol", password=PASSWORD, is_active=False)
    hasher_calls.reset_mock()
    response = api.post(
        "/api/auth/login/", {"username": "carol", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "3/min", "username": None}})
def test_clients_without_a_readable_address_share_one_ip_bucket(api, user):
    statuses = [
        api.post("/api/auth/login/", {"username": f"u{i}", "password": "x"}, format="json",
                 REMOTE_ADDR="unix:/run/app.sock").status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None, "username": "3/min"}})
def test_username_and_email_share_one_login_bucket(api, user):
    for identifier in ("alice", "alice@example.com", "ALICE"):
        api.post("/api/auth/login/", {"username": identifier, "password": "x"}, format="json")
    response = api.post(
        "/api/auth/login/", {"email": "alice@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429


def test_deleting_a_user_refuses_its_cached_tokens_at_once(api, user, login):
    token = login()["token"]
    assert api.get("/api/protected/", **auth_header(token)).status_code == 200  # cached
    user.delete()
    assert api.get("/api/protected/", **auth_header(token)).status_code == 401


def test_the_password_hash_is_not_cached(api, user, login):
    token = login()["token"]
    caches["default"].clear()
    api.get("/api/protected/", **auth_header(token))
    cached = caches["default"].get("tessera:session:" + opaque.digest(token))
    assert "password" not in cached.user.__dict__


def test_touch_racing_a_revocation_leaves_the_tombstone(api, user, login, clock):
    token = login()["token"]
    api.get("/api/protected/", **auth_header(token))  # cached, last used now
    session = Session.objects.get()
    # Revoked behind the cache's back (as by a concurrent process whose tombstone the
    # touch below would otherwise evict).
    Session.objects.filter(pk=session.pk).update(revoked_at=clock.now, revoke_reason="admin")
    clock.advance(minutes=2)
    response = api.get("/api/protected/", **auth_header(token))  # due a touch: CAS fails
    assert response.status_code == 200  # served from the cache copy read before the touch
    cached = caches["default"].get("tessera:session:" + session.token_digest)
    assert cached == "revoked"
    assert api.get("/api/protected/", **auth_header(token)).status_code == 401


def test_jwt_endpoints_challenge_with_bearer(api):
    response = api.post("/api/auth/jwt/refresh/", {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "tessera,check_id",
    [
        ({"TOKEN_TTL": timedelta(seconds=-1)}, "tessera.E008"),
        ({"JWT_ACCESS_LIFETIME": timedelta(0)}, "tessera.E008"),
        ({"JWT_LEEWAY": timedelta(seconds=-5)}, "tessera.E008"),
        ({"JWT_LEEWAY": timedelta(days=365)}, "tessera.W011"),
        ({"JWT_REUSE_GRACE": timedelta(days=30)}, "tessera.W011"),
        ({"NUM_PROXIES": -1}, "tessera.E009"),
        ({"TOKEN_LIMIT_PER_USER": 0}, "tessera.E009"),
        ({"MAX_BODY_BYTES": 10}, "tessera.E009"),
    ],
)
def test_out_of_bounds_values_are_reported(tessera, check_id, settings):
    settings.DEBUG = True
    with override_settings(TESSERA=tessera):
        assert [m.id for m in check_settings()] == [check_id]


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "100/min"}})
def test_a_login_throttle_scope_left_out_keeps_its_default(api, user):
    statuses = [
        api.post("/api/auth/login/", {"username": "alice", "password": "x"},
                 format="json").status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_switching_one_login_scope_off_is_not_a_warning(settings):
    settings.DEBUG = True
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None}}):
        assert check_settings() == []
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None, "username": None}}):
        assert [m.id for m in check_settings()] == ["tessera.W001"]


@pytest.mark.parametrize("path", ["/api/auth/jwt/", "/api/auth/jwt/sliding/"])
@pytest.mark.parametrize("username,password", [("nobody", PASSWORD), ("alice", "wrong")])
def test_jwt_logins_refuse_bad_credentials_and_create_nothing(api, user, path, username,
                                                                password, hasher_calls):
    response = api.post(path, {"username": username, "password": password}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists() and not RefreshToken.objects.exists()


@pytest.mark.parametrize("body,code", [
    ({"token": "garbage"}, "invalid_token"),
    ({"token": "a.b.c"}, "invalid_token"),
    ({}, "invalid"),
    ({"token": "x" * 9000}, "invalid"),
])
def test_sliding_refresh_refuses_bad_input(api, body, code):
    response = api.post("/api/auth/jwt/sliding/refresh/", body, format="json")
    assert response.json()["code"] == code
    assert response.status_code == (400 if code == "invalid" else 401)


def test_sliding_refresh_refuses_an_access_token(api, user):
    access = jwt_pair(api)["access"]
    response = api.post("/api/auth/jwt/sliding/refresh/", {"token": access}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_token_type"
    assert Session.objects.get().revoked_at is None


def test_a_user_save_racing_a_revocation_keeps_the_tombstone(user, monkeypatch):
    from tessera import session_cache
    from tessera.services import sessions as session_service

    issued = open_session(user)
    real_evict = session_cache.evict

    def revoke_then_evict(digests):
        # The revocation commits (with its tombstone) just before the eviction runs.
        session_service.revoke_sessions([issued.session], RevokeReason.ADMIN)
        real_evict(digests)

    monkeypatch.setattr(session_cache, "evict", revoke_then_evict)
    session_service.forget_cached_user(user)
    assert caches["default"].get("tessera:session:" + issued.session.token_digest) == "revoked"
