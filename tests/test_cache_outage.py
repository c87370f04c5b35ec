"""A cache outage never makes a user save raise, and never leaves a revoked session usable.

Cache writes are broken with a monkeypatch (reads keep working, as when Redis refuses
writes, or when it comes back with its saved data): the stale live entry a test leaves
in the cache is then exactly what a request would find once the cache answers again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.test import override_settings

from tessera import session_cache
from tessera.models import CacheInvalidation, PendingCacheInvalidation, Session
from tessera.tokens import opaque

from .conftest import PASSWORD, auth_header, requires_redis

pytestmark = pytest.mark.django_db


def get_protected(api, token):
    return api.get("/api/protected/", **auth_header(token))


@contextmanager
def cache_writes_failing(monkeypatch):
    cache = caches["default"]

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    with monkeypatch.context() as patch:
        patch.setattr(cache, "set_many", broken)
        patch.setattr(cache, "delete_many", broken)
        yield


def cached(token: str):
    return caches["default"].get(session_cache.KEY_PREFIX + opaque.digest(token))


def outbox() -> list[tuple[str, str]]:
    return list(PendingCacheInvalidation.objects.values_list("token_digest", "action"))


def as_another_process(monkeypatch) -> None:
    """Forget this process's failures: the outbox is all another process could know of."""
    monkeypatch.setattr(session_cache, "_failure_log", session_cache.FailureLog())


@pytest.fixture
def cached_token(api, user, login) -> str:
    token = login()["token"]
    assert get_protected(api, token).status_code == 200
    assert isinstance(cached(token), Session)
    return token


# user.save() and user.delete() never raise because of the cache


def test_deactivation_with_the_cache_down_revokes_and_the_cache_refuses_once_back(
    api, user, cached_token, monkeypatch
):
    with cache_writes_failing(monkeypatch):
        user.is_active = False
        user.save()  # must not raise
    assert Session.objects.get().revoke_reason == "deactivated"
    assert outbox() == [(opaque.digest(cached_token), CacheInvalidation.TOMBSTONE)]
    assert isinstance(cached(cached_token), Session)  # the stale live copy is still there
    response = get_protected(api, cached_token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert cached(cached_token) == session_cache.REVOKED
    assert outbox() == []


def test_profile_change_with_the_cache_down_is_not_served_stale_once_back(
    api, user, cached_token, monkeypatch
):
    with cache_writes_failing(monkeypatch):
        user.username = "alice2"
        user.save()
    assert outbox() == [(opaque.digest(cached_token), CacheInvalidation.EVICT)]
    assert cached(cached_token).user.username == "alice"
    assert get_protected(api, cached_token).json() == {"message": "Hello, alice2."}
    assert outbox() == []


def test_deleting_a_user_with_the_cache_down_leaves_no_usable_session_once_back(
    api, user, cached_token, monkeypatch
):
    with cache_writes_failing(monkeypatch):
        user.delete()
    assert not Session.objects.exists()
    assert outbox() == [(opaque.digest(cached_token), CacheInvalidation.TOMBSTONE)]
    assert isinstance(cached(cached_token), Session)
    assert get_protected(api, cached_token).status_code == 401


def test_a_save_inside_a_transaction_does_not_raise_at_commit_either(
    user, cached_token, monkeypatch, django_capture_on_commit_callbacks
):
    # As the admin saves: in its own transaction, whose commit runs the second tombstone.
    with cache_writes_failing(monkeypatch):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            user.is_active = False
            user.save()
    assert Session.objects.get().revoked_at is not None
    digest = opaque.digest(cached_token)
    assert set(outbox()) == {(digest, CacheInvalidation.TOMBSTONE)}


@contextmanager
def second_tombstone_failing(monkeypatch):
    """The tombstone written at once succeeds; the one written at commit fails."""
    cache = caches["default"]
    real_set_many, calls = cache.set_many, []

    def fails_after_the_first(*args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            raise ConnectionError("cache down")
        return real_set_many(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(cache, "set_many", fails_after_the_first)
        yield


def test_a_failed_tombstone_at_commit_still_keeps_this_process_from_stale_hits(
    api, user, cached_token, monkeypatch, django_capture_on_commit_callbacks
):
    stale = cached(cached_token)
    with second_tombstone_failing(monkeypatch):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            user.is_active = False
            user.save()
        # A reader that loaded the row before the commit puts its live copy back.
        caches["default"].set(session_cache.KEY_PREFIX + opaque.digest(cached_token), stale)
    assert outbox() == [(opaque.digest(cached_token), CacheInvalidation.TOMBSTONE)]
    assert get_protected(api, cached_token).status_code == 401
    assert outbox() == []


def test_a_database_failure_at_commit_is_logged_not_raised_after_the_commit(
    user, cached_token, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def database_down(*args, **kwargs):
        raise DatabaseError("database down")

    with second_tombstone_failing(monkeypatch):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            user.is_active = False
            user.save()
            monkeypatch.setattr(PendingCacheInvalidation.objects, "bulk_create", database_down)
    assert Session.objects.get().revoked_at is not None
    assert "database down" in caplog.text


def test_a_failing_database_rolls_the_revocation_back_with_its_outbox_row(
    user, cached_token, monkeypatch
):
    def database_down(*args, **kwargs):
        raise DatabaseError("database down")

    monkeypatch.setattr(PendingCacheInvalidation.objects, "bulk_create", database_down)
    with cache_writes_failing(monkeypatch), pytest.raises(DatabaseError, match="database down"):
        user.is_active = False
        user.save()
    # Nothing half-done: no revocation whose invalidation could be lost.
    assert Session.objects.get().revoked_at is None


# A process that saw the failure never trusts a hit before the outbox is replayed


def test_while_the_outbox_cannot_be_replayed_the_database_answers(
    api, user, cached_token, monkeypatch
):
    with cache_writes_failing(monkeypatch):
        user.is_active = False
        user.save()
        assert isinstance(cached(cached_token), Session)
        assert get_protected(api, cached_token).status_code == 401
        assert outbox() != []


def test_a_read_failure_makes_the_process_replay_before_trusting_a_hit(
    api, user, cached_token, monkeypatch
):
    # Written by another process that could not reach the cache.
    Session.objects.update(revoked_at=Session.objects.get().last_used_at)
    PendingCacheInvalidation.objects.create(
        token_digest=opaque.digest(cached_token), action=CacheInvalidation.TOMBSTONE
    )

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    with monkeypatch.context() as patch:
        patch.setattr(caches["default"], "get", broken)
        assert get_protected(api, cached_token).status_code == 401  # database answers
    # The cache is back with its old entry; this process saw it fail, so it replays first.
    assert get_protected(api, cached_token).status_code == 401
    assert outbox() == []


# Processes that saw no failure: every successful revocation and the cron job replay


def test_a_successful_revocation_anywhere_replays_the_outbox(
    api, user, other_user, login, cached_token, monkeypatch, django_capture_on_commit_callbacks
):
    with cache_writes_failing(monkeypatch):
        user.is_active = False
        user.save()
    as_another_process(monkeypatch)
    bob = login("bob")["token"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/auth/logout/", **auth_header(bob)).status_code == 204
    assert outbox() == []
    assert cached(cached_token) == session_cache.REVOKED
    assert get_protected(api, cached_token).status_code == 401


def test_clearsessions_replays_the_outbox(api, user, cached_token, monkeypatch):
    with cache_writes_failing(monkeypatch):
        user.is_active = False
        user.save()
    as_another_process(monkeypatch)
    out = StringIO()
    call_command("tessera_clearsessions", stdout=out)
    assert "Wrote 1 pending cache invalidation(s)." in out.getvalue()
    assert outbox() == []
    assert get_protected(api, cached_token).status_code == 401


def test_clearsessions_keeps_the_outbox_while_the_cache_is_down(user, cached_token, monkeypatch):
    err = StringIO()
    with cache_writes_failing(monkeypatch):
        user.is_active = False
        user.save()
        call_command("tessera_clearsessions", stdout=StringIO(), stderr=err)
    assert "pending cache invalidations are kept" in err.getvalue()
    assert len(outbox()) == 1


# HTTP revocations answer 503 and change nothing, so the client's retry completes them


@pytest.mark.parametrize("path", ["/api/auth/logout/", "/api/auth/logout/all/"])
def test_a_logout_that_cannot_tombstone_is_503_and_rolled_back(
    api, user, cached_token, monkeypatch, path
):
    with cache_writes_failing(monkeypatch):
        response = api.post(path, **auth_header(cached_token))
    assert response.status_code == 503
    assert response["Retry-After"]
    # Not committed: no cache anywhere can be left holding a session revoked behind it.
    assert Session.objects.get().revoked_at is None
    assert outbox() == []
    assert get_protected(api, cached_token).status_code == 200
    assert api.post(path, **auth_header(cached_token)).status_code == 204
    assert cached(cached_token) == session_cache.REVOKED
    assert get_protected(api, cached_token).status_code == 401


def test_a_password_change_that_cannot_tombstone_changes_nothing(
    api, user, cached_token, login, monkeypatch
):
    other = login()["token"]
    with cache_writes_failing(monkeypatch):
        response = api.post(
            "/api/auth/password/change/",
            {"current_password": PASSWORD, "new_password": "a new long passphrase"},
            format="json",
            **auth_header(cached_token),
        )
    assert response.status_code == 503
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not Session.objects.filter(revoked_at__isnull=False).exists()
    assert get_protected(api, other).status_code == 200


# Replay


def test_replay_writes_evictions_before_tombstones_and_tombstones_revoked_evictions(
    user, cached_token, login
):
    revoked_later = login()["token"]
    Session.objects.filter(token_digest=opaque.digest(revoked_later)).update(
        revoked_at=Session.objects.get(token_digest=opaque.digest(cached_token)).created_at
    )
    PendingCacheInvalidation.objects.bulk_create(
        [
            PendingCacheInvalidation(
                token_digest=opaque.digest(cached_token), action=CacheInvalidation.TOMBSTONE
            ),
            PendingCacheInvalidation(
                token_digest=opaque.digest(cached_token), action=CacheInvalidation.EVICT
            ),
            PendingCacheInvalidation(
                token_digest=opaque.digest(revoked_later), action=CacheInvalidation.EVICT
            ),
        ]
    )
    assert session_cache.replay_pending() is True
    assert cached(cached_token) == session_cache.REVOKED
    assert cached(revoked_later) == session_cache.REVOKED
    assert outbox() == []


def test_a_replay_does_not_clear_a_failure_noted_while_it_ran():
    log = session_cache.FailureLog()
    log.note_failure()
    started_at = log.replay_started()
    log.note_failure()  # another thread, whose outbox row the replay may not have seen
    log.replayed(started_at)
    assert log.replay_due


# Real Redis


@requires_redis
def test_with_redis_unreachable_a_deactivation_is_refused_once_redis_is_back(
    api, user, cached_token
):
    unreachable = {
        "default": {"BACKEND": "tessera.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    with override_settings(CACHES=unreachable):
        user.is_active = False
        user.save()
    assert outbox() == [(opaque.digest(cached_token), CacheInvalidation.TOMBSTONE)]
    assert isinstance(cached(cached_token), Session)  # Redis kept the live entry
    response = get_protected(api, cached_token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert cached(cached_token) == session_cache.REVOKED


def test_a_new_process_replays_the_outbox_before_its_first_cache_hit(
    api, user, cached_token, monkeypatch
):
    # Another process revoked while the cache was away; the stale entry is back.
    Session.objects.update(revoked_at=Session.objects.get().created_at)
    PendingCacheInvalidation.objects.create(
        token_digest=opaque.digest(cached_token), action=CacheInvalidation.TOMBSTONE
    )
    assert isinstance(cached(cached_token), Session)
    monkeypatch.setattr(session_cache, "_failure_log", session_cache.FailureLog(replay_due=True))
    assert get_protected(api, cached_token).status_code == 401
    assert outbox() == []
    assert cached(cached_token) == session_cache.REVOKED


def test_a_process_starts_with_a_replay_due():
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from tessera import session_cache; "
            "print(session_cache._failure_log.replay_due)",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=True,
    )
    assert started.stdout.strip() == "True"


def test_a_due_last_used_write_with_the_cache_down_still_answers(
    api, user, cached_token, monkeypatch, clock
):
    clock.advance(minutes=2)
    with cache_writes_failing(monkeypatch):
        assert get_protected(api, cached_token).status_code == 200
    assert Session.objects.get().last_used_at == clock.now
    assert outbox() == [(opaque.digest(cached_token), CacheInvalidation.EVICT)]
