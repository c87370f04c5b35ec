"""Authenticating a request: query counts, caching, sliding expiry, fail-closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import DatabaseError, transaction
from django.test import override_settings

from tessera import session_cache, signals
from tessera.models import RevokeReason, Session
from tessera.services.sessions import authenticate_token, open_session
from tessera.tokens import opaque

from .conftest import auth_header, failing, get_protected, receiving

pytestmark = pytest.mark.django_db


def test_cold_request_costs_one_query_and_warm_none(api, user, login, django_assert_num_queries):
    token = login()["token"]
    caches["default"].clear()
    with django_assert_num_queries(1):
        assert get_protected(api, token).status_code == 200
    with django_assert_num_queries(0):
        assert get_protected(api, token).status_code == 200
    with django_assert_num_queries(0):
        assert get_protected(api, token).status_code == 200


def test_steady_state_writes_nothing_until_refresh_interval(
    api, user, login, clock, django_assert_num_queries
):
    token = login()["token"]
    session = Session.objects.get()
    get_protected(api, token)
    clock.advance(seconds=59)
    with django_assert_num_queries(0):
        get_protected(api, token)
    session.refresh_from_db()
    assert session.last_used_at == clock.now - timedelta(seconds=59)

    clock.advance(seconds=1)
    with django_assert_num_queries(1) as ctx:
        get_protected(api, token)
    assert ctx.captured_queries[0]["sql"].startswith("UPDATE")
    session.refresh_from_db()
    assert session.last_used_at == clock.now
    assert session.idle_expires_at == clock.now + timedelta(hours=10)


def test_touch_racing_a_revocation_leaves_the_tombstone(api, user, login, clock):
    token = login()["token"]
    get_protected(api, token)  # cached, last used now
    session = Session.objects.get()
    # Revoked behind the cache's back (as by a concurrent process whose tombstone the
    # touch below would otherwise evict).
    Session.objects.filter(pk=session.pk).update(revoked_at=clock.now, revoke_reason="admin")
    clock.advance(minutes=2)
    response = get_protected(api, token)  # due a touch: CAS fails
    assert response.status_code == 200  # served from the cache copy read before the touch
    cached = caches["default"].get("tessera:session:" + session.token_digest)
    assert cached == "revoked"
    assert get_protected(api, token).status_code == 401


def test_touch_sends_session_refreshed(api, user, login, clock):
    token = login()["token"]
    with receiving(signals.session_refreshed, "session") as received:
        clock.advance(minutes=2)
        get_protected(api, token)
    assert [s.pk for s in received] == [Session.objects.get().pk]


def test_idle_expiry_logs_out_and_fires_expired_once(api, user, login, clock):
    token = login()["token"]
    with receiving(signals.session_expired, "session") as expired:
        clock.advance(hours=10, seconds=1)
        first = get_protected(api, token)
        second = get_protected(api, token)
    assert first.status_code == 401 and first.json()["code"] == "token_expired"
    assert second.status_code == 401
    assert len(expired) == 1
    assert Session.objects.get().revoke_reason == RevokeReason.EXPIRED


def test_use_slides_idle_expiry_but_never_past_max_ttl(api, user, login, clock):
    token = login()["token"]
    for _ in range(3 * 30):  # every 8 hours for 30 days
        clock.advance(hours=8)
        response = get_protected(api, token)
        if response.status_code != 200:
            break
    session = Session.objects.get()
    assert response.status_code == 401
    assert session.created_at + timedelta(days=30) <= clock.now
    assert session.idle_expires_at <= session.expires_at


@override_settings(TESSERA={"AUTO_REFRESH": False})
def test_without_auto_refresh_idle_expiry_stays(api, user, login, clock):
    token = login()["token"]
    clock.advance(hours=9)
    assert get_protected(api, token).status_code == 200
    clock.advance(hours=1, seconds=1)
    assert get_protected(api, token).status_code == 401


def test_revocation_wins_over_a_warm_cache(api, user, login):
    first, second = login()["token"], login()["token"]
    assert get_protected(api, first).status_code == 200  # cached now
    session = Session.objects.get(token_digest=opaque.digest(first))
    response = api.delete(f"/api/auth/sessions/{session.pk}/", **auth_header(second))
    assert response.status_code == 204
    response = get_protected(api, first)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert get_protected(api, second).status_code == 200


def test_deactivating_the_user_revokes_every_session(api, user, login):
    token = login()["token"]
    assert get_protected(api, token).status_code == 200
    user.is_active = False
    user.save()
    assert get_protected(api, token).status_code == 401
    assert Session.objects.get().revoke_reason == RevokeReason.DEACTIVATED


def test_inactive_user_found_by_queryset_update_is_refused(api, user, login):
    token = login()["token"]
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no signal
    caches["default"].clear()
    response = get_protected(api, token)
    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_deleting_a_user_refuses_its_cached_tokens_at_once(api, user, login):
    token = login()["token"]
    assert get_protected(api, token).status_code == 200  # cached
    user.delete()
    assert get_protected(api, token).status_code == 401


def test_user_changes_reach_cached_sessions(api, user, login):
    token = login()["token"]
    get_protected(api, token)
    user.username = "alice2"
    user.save()
    assert get_protected(api, token).json() == {"message": "Hello, alice2."}


def test_the_password_hash_is_not_cached(api, user, login):
    token = login()["token"]
    caches["default"].clear()
    get_protected(api, token)
    cached = caches["default"].get("tessera:session:" + opaque.digest(token))
    assert "password" not in cached.user.__dict__


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


def test_cache_read_failure_falls_back_to_the_database(api, user, login, monkeypatch):
    token = login()["token"]
    cache_down = failing(ConnectionError("cache down"))
    monkeypatch.setattr(caches["default"], "get", cache_down)
    monkeypatch.setattr(caches["default"], "add", cache_down)
    assert get_protected(api, token).status_code == 200


def test_cache_and_database_down_is_503_never_200(api, user, login, monkeypatch):
    token = login()["token"]
    monkeypatch.setattr(caches["default"], "get", failing(ConnectionError("cache down")))
    monkeypatch.setattr(Session.objects, "select_related", failing(DatabaseError("database down")))
    response = get_protected(api, token)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_failed_tombstone_write_is_503_and_logout_can_be_retried(api, user, login, monkeypatch):
    token = login()["token"]
    real_set_many = caches["default"].set_many
    monkeypatch.setattr(caches["default"], "set_many", failing(ConnectionError("cache down")))
    assert api.post("/api/auth/logout/", **auth_header(token)).status_code == 503
    assert Session.objects.get().revoked_at is None
    monkeypatch.setattr(caches["default"], "set_many", real_set_many)
    # The client retries as told; the retry writes the tombstone.
    assert api.post("/api/auth/logout/", **auth_header(token)).status_code == 204
    assert get_protected(api, token).status_code == 401


@pytest.mark.parametrize(
    "header,code",
    [
        ("Token", "invalid_header"),
        ("Token tsr1_abc def", "invalid_header"),
        ("Token tsr1_" + "a" * 10_000, "invalid_token"),
        ("Token tsr1_short", "invalid_token"),
        ("Token tsr9_" + "a" * 43, "invalid_token"),
        ("Token tsr1_" + "a" * 43, "invalid_token"),
        ("Bearer tsr1_" + "!" * 43, "invalid_token"),
    ],
)
def test_bad_tokens_are_401_with_a_code(api, user, header, code):
    response = api.get("/api/protected/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"] == 'Token realm="api"'


@pytest.mark.parametrize("header", ["Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Basic YTpi"])
def test_foreign_tokens_are_left_to_other_authenticators(api, header, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api.get("/api/protected/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_an_expiry_in_a_stale_cached_copy_is_checked_against_the_row(api, user, login, clock):
    """A copy cached before its session was used again must not end the session."""
    token = login()["token"]
    digest = opaque.digest(token)
    assert get_protected(api, token).status_code == 200
    stale = caches["default"].get(session_cache.KEY_PREFIX + digest)
    stale.idle_expires_at = clock.now + timedelta(minutes=1)
    caches["default"].set(session_cache.KEY_PREFIX + digest, stale)
    clock.advance(minutes=2)
    assert get_protected(api, token).status_code == 200
    assert Session.objects.get().revoked_at is None


@pytest.mark.django_db(transaction=True)
def test_a_copy_read_before_a_user_change_committed_is_not_cached_after_it(api, user, login):
    """The admin saves inside a transaction; a request elsewhere reads the old row meanwhile."""
    token = login()["token"]
    user.is_staff = True
    user.save()
    digest = opaque.digest(token)
    # Another request finds no cached entry and reads the row as committed so far...
    read_before_commit = Session.objects.select_related("user").get(token_digest=digest)
    with transaction.atomic():
        user.is_staff = False
        user.save()
    session_cache.remember(read_before_commit)  # ...and adds its copy once the change committed
    assert read_before_commit.user.is_staff
    assert authenticate_token(token).user.is_staff is False
