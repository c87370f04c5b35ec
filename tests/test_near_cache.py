"""The per-process near cache: served without a round trip, invalidated by Redis, fail-safe.

Tests marked ``requires_redis`` run against the suite's Redis (REDIS_URL); the faults
they cause are confined to this process's own invalidation connection.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.checks import run_checks
from django.test import override_settings
from django.utils import timezone

from tessera import near_cache as near_cache_module
from tessera import session_cache
from tessera.models import CacheInvalidation, PendingCacheInvalidation, Session
from tessera.near_cache import NearCache
from tessera.services import sessions as session_service
from tessera.tokens import opaque

from .conftest import get_protected, requires_redis

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = {"BACKEND": "tessera.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}


def redis_url() -> str:
    return os.environ["REDIS_URL"]


def tracked_prefix() -> str:
    return caches["default"].make_key(session_cache.KEY_PREFIX)


def wait_for_invalidations(near: NearCache) -> None:
    """Return once every invalidation Redis sent before now has been applied.

    Redis delivers them in order on one connection, so a fence key's own invalidation
    arriving means all earlier ones have.
    """
    fence = f"fence-{uuid.uuid4()}"
    caches["default"].set(session_cache.KEY_PREFIX + fence, "x", 5)
    deadline = time.monotonic() + 2
    while fence not in near._invalidated_at:
        assert near.connected, "the invalidation connection dropped"
        assert time.monotonic() < deadline, "the fence's invalidation never arrived"
        time.sleep(0.001)


def shared_reads(monkeypatch) -> list[str]:
    cache = caches["default"]
    real_get, reads = cache.get, []

    def counting_get(key, *args, **kwargs):
        reads.append(key)
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", counting_get)
    return reads


@pytest.fixture
def near() -> NearCache:
    near = session_cache.near_cache()
    assert near is not None
    return near


@pytest.fixture
def warm_token(api, user, login, near) -> str:
    """A token whose session this process holds in its near cache."""
    token = login()["token"]
    assert get_protected(api, token).status_code == 200  # database, then shared cache
    assert get_protected(api, token).status_code == 200  # shared cache, then near cache
    assert near.lookup(opaque.digest(token))[0] is not None
    return token


# Configuration


def test_it_is_off_with_a_per_process_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert session_cache.near_cache() is None


def test_it_is_on_by_default_with_redis_and_off_when_asked(settings):
    settings.CACHES = {"default": UNREACHABLE_REDIS}
    near = session_cache.near_cache()
    assert near is not None
    assert near.url == "redis://127.0.0.1:1/0"
    assert near.tracked_prefix == ":1:tessera:session:"
    settings.TESSERA = {"NEAR_CACHE": False}
    assert session_cache.near_cache() is None


def test_several_servers_turn_it_off_with_a_warning(settings):
    """Django reads from the replicas, whose copies of a write are not tracked."""
    settings.CACHES = {
        "default": {
            "BACKEND": "tessera.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0;redis://127.0.0.1:2/0",
        }
    }
    assert session_cache.near_cache() is None
    assert "tessera.W004" in {message.id for message in run_checks()}
    settings.TESSERA = {"NEAR_CACHE": True}
    assert "tessera.E016" in {message.id for message in run_checks()}


def test_the_caches_connection_options_are_used_but_not_its_pool_options(settings):
    settings.CACHES = {
        "default": {
            **UNREACHABLE_REDIS,
            "OPTIONS": {"password": "secret", "pool_class": "x.Pool", "max_connections": 5},
        }
    }
    assert session_cache.near_cache().options == {"password": "secret"}


def test_near_cache_true_without_redis_is_a_start_up_error(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.TESSERA = {"NEAR_CACHE": True}
    assert session_cache.near_cache() is None
    assert "tessera.E016" in {message.id for message in run_checks()}


def hashed_key(key, key_prefix, version):
    return f"{key_prefix}:{version}:{hash(key)}"


def test_a_key_function_that_loses_the_prefix_turns_it_off_with_a_warning(settings):
    settings.CACHES = {"default": {**UNREACHABLE_REDIS, "KEY_FUNCTION": hashed_key}}
    assert session_cache.near_cache() is None
    assert "tessera.W004" in {message.id for message in run_checks()}
    settings.TESSERA = {"NEAR_CACHE": True}
    assert "tessera.E016" in {message.id for message in run_checks()}


def test_redis_out_of_reach_costs_one_short_connect_attempt_a_second(monkeypatch):
    near = NearCache(url="redis://127.0.0.1:1/0", tracked_prefix="p:", max_age=5, max_entries=10)
    attempts = []

    class CountingPool(near_cache_module.redis.ConnectionPool):
        def __init__(self, **kwargs):
            attempts.append(kwargs["socket_connect_timeout"])
            super().__init__(**kwargs)

    monkeypatch.setattr(near_cache_module.redis, "ConnectionPool", CountingPool)
    for _ in range(5):
        assert near.lookup("k") == (None, None)
    assert attempts == [near_cache_module.CONNECT_TIMEOUT]
    assert not near.connected


def test_a_slow_connect_holds_up_no_other_request(monkeypatch):
    near = NearCache(url="redis://127.0.0.1:1/0", tracked_prefix="p:", max_age=5, max_entries=10)
    connecting, release = threading.Event(), threading.Event()

    def slow_open():
        connecting.set()
        release.wait(5)

    monkeypatch.setattr(near, "_open", slow_open)
    first = threading.Thread(target=near.lookup, args=("k",))
    first.start()
    assert connecting.wait(5)
    started = time.perf_counter()
    assert near.lookup("k") == (None, None)
    assert time.perf_counter() - started < 0.1
    release.set()
    first.join()


def test_the_least_recently_used_entry_goes_first():
    near = NearCache(url="redis://127.0.0.1:1/0", tracked_prefix="p:", max_age=5, max_entries=2)
    near._connection = object()  # as if connected: entries may be stored
    near._ready = lambda: True
    for key in "ab":
        near.store(key, key, near.lookup(key)[1])
    assert near.lookup("a")[0] == "a"
    near.store("c", "c", near.lookup("c")[1])
    assert [near.lookup(key)[0] for key in "abc"] == ["a", None, "c"]


def test_a_ticket_older_than_max_age_stores_nothing(fake_monotonic):
    near = NearCache(url="redis://127.0.0.1:1/0", tracked_prefix="p:", max_age=5, max_entries=9)
    near._connection = object()
    near._ready = lambda: True
    _, ticket = near.lookup("k")
    fake_monotonic.now += 6
    near.store("k", "value", ticket)
    assert near.lookup("k")[0] is None


def test_invalidations_older_than_max_age_are_forgotten(fake_monotonic):
    near = NearCache(url="redis://127.0.0.1:1/0", tracked_prefix="p:", max_age=5, max_entries=9)
    near._apply([b"message", b"__redis__:invalidate", [b"p:old"]])
    fake_monotonic.now += 6
    near._apply([b"message", b"__redis__:invalidate", [b"p:new"]])
    assert list(near._invalidated_at) == ["new"]


# Served without a round trip, and a private copy each time


@requires_redis
def test_a_warm_session_costs_no_query_and_no_redis_read(
    api, warm_token, monkeypatch, django_assert_num_queries
):
    reads = shared_reads(monkeypatch)
    with django_assert_num_queries(0):
        assert get_protected(api, warm_token).status_code == 200
    assert reads == []


@requires_redis
def test_each_lookup_gets_its_own_copy(warm_token):
    digest = opaque.digest(warm_token)
    first = session_cache.get(digest)
    first.device_name = "changed"
    first.user.username = "changed"
    second = session_cache.get(digest)
    assert isinstance(second, Session)
    assert (second.device_name, second.user.username) == ("", "alice")


# Invalidated by Redis


@requires_redis
def test_a_tombstone_written_by_another_server_is_seen_on_the_next_request(api, warm_token, near):
    # The shared cache's own connections stand for another server's.
    caches["default"].set(
        session_cache.KEY_PREFIX + opaque.digest(warm_token), session_cache.REVOKED, 60
    )
    response = get_protected(api, warm_token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


@requires_redis
@pytest.mark.parametrize("path", ["/api/auth/logout/", "/api/auth/logout/all/"])
def test_a_logout_is_refused_on_the_next_request(api, warm_token, path):
    assert api.post(path, HTTP_AUTHORIZATION=f"Token {warm_token}").status_code == 204
    assert get_protected(api, warm_token).status_code == 401


@requires_redis
def test_an_entry_that_expires_in_redis_leaves_the_near_cache(near):
    near.store("expiring", "value", near.lookup("expiring")[1])
    caches["default"].set(session_cache.KEY_PREFIX + "expiring", "value", 60)
    wait_for_invalidations(near)
    assert near.lookup("expiring")[0] is None


@requires_redis
def test_a_value_read_before_an_invalidation_is_not_stored_after_it(near):
    _, ticket = near.lookup("raced")
    caches["default"].set(session_cache.KEY_PREFIX + "raced", "new", 60)
    wait_for_invalidations(near)
    near.store("raced", "old", ticket)
    assert near.lookup("raced")[0] is None
    value, ticket = near.lookup("raced")
    near.store("raced", "new", ticket)
    assert near.lookup("raced")[0] == "new"


@requires_redis
def test_a_flush_empties_it_and_refuses_values_read_before(near):
    _, before_flush = near.lookup("a")
    near.store("b", "value", near.lookup("b")[1])
    caches["default"].clear()
    wait_for_invalidations(near)
    assert near.lookup("b")[0] is None
    near.store("a", "value", before_flush)
    assert near.lookup("a")[0] is None


@requires_redis
def test_options_in_the_url_cannot_change_the_connection_it_needs():
    near = NearCache(
        url=redis_url() + "?protocol=3&socket_timeout=30",
        tracked_prefix=tracked_prefix(),
        max_age=5,
        max_entries=10,
    )
    assert near.connected
    assert near._connection.socket_timeout == near_cache_module.SOCKET_TIMEOUT
    assert near._connection.protocol in (2, "2")
    near.close()


@requires_redis
def test_it_holds_at_most_max_entries_oldest_out_first():
    near = NearCache(url=redis_url(), tracked_prefix=tracked_prefix(), max_age=5, max_entries=2)
    for key in "abc":
        near.store(key, key, near.lookup(key)[1])
    assert [near.lookup(key)[0] for key in "abc"] == [None, "b", "c"]
    near.close()


# Fail-safe


@requires_redis
def test_a_killed_invalidation_connection_stops_it_until_it_reconnects_empty(
    api, warm_token, near, monkeypatch
):
    caches["default"]._cache.get_client().client_kill_filter(_id=near.client_id)
    deadline = time.monotonic() + 2
    while near.connected:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # Served by the shared cache meanwhile, after replaying what may have been missed.
    assert session_cache._failure_log.replay_due
    reads = shared_reads(monkeypatch)
    assert get_protected(api, warm_token).status_code == 200
    assert reads, "a near-cache hit was served without its invalidation connection"
    monkeypatch.setattr(near_cache_module, "RECONNECT_INTERVAL", 0)
    near._next_connect_at = 0
    assert near.connected
    assert near.lookup(opaque.digest(warm_token))[0] is None  # emptied on reconnect


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_monotonic(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(near_cache_module.time, "monotonic", clock)
    return clock


def own_near_cache(resets: list | None = None) -> NearCache:
    return NearCache(
        url=redis_url(),
        tracked_prefix=tracked_prefix(),
        max_age=1.0,
        max_entries=100,
        on_reset=(lambda: resets.append(1)) if resets is not None else (lambda: None),
    )


def await_pong(near: NearCache) -> None:
    deadline = time.perf_counter() + 2
    while near._ping_sent_at is not None:
        assert time.perf_counter() < deadline, "no pong"
        near.connected  # noqa: B018 - reading it drains the connection
        time.sleep(0.001)


@requires_redis
def test_no_entry_is_served_past_max_age(fake_monotonic):
    near = own_near_cache()
    near.store("k", "value", near.lookup("k")[1])
    for _ in range(4):  # pings keep the connection confirmed meanwhile
        fake_monotonic.now += 0.3
        near.connected  # noqa: B018
        await_pong(near)
    assert near.connected
    assert near.lookup("k")[0] is None
    near.close()


@requires_redis
def test_a_silent_connection_stops_it_within_max_age(fake_monotonic, monkeypatch):
    resets = []
    near = own_near_cache(resets)
    near.store("k", "value", near.lookup("k")[1])
    # The network drops everything from now on: no invalidation, no pong arrives.
    monkeypatch.setattr(near._connection, "can_read", lambda timeout=0: False)
    fake_monotonic.now += 0.5  # a PING goes out
    assert near.lookup("k")[0] == "value"
    fake_monotonic.now += 0.6  # unconfirmed for longer than max_age: nothing served
    assert near.lookup("k") == (None, None)
    fake_monotonic.now += 0.5  # the PING unanswered for longer than max_age: reset
    assert near.lookup("k") == (None, None)
    assert resets == [1]
    assert near.client_id is None
    near.close()


@requires_redis
def test_after_an_idle_spell_it_waits_for_a_fresh_pong_without_resetting(fake_monotonic):
    resets = []
    near = own_near_cache(resets)
    near.store("k", "value", near.lookup("k")[1])
    fake_monotonic.now += 60
    assert near.lookup("k") == (None, None)  # the PING is sent now
    await_pong(near)
    assert near.lookup("k")[1] is not None
    assert near.lookup("k")[0] is None  # older than max_age
    assert resets == []
    near.close()


@requires_redis
def test_a_reconnect_tells_the_shared_cache_that_invalidations_may_be_lost(
    fake_monotonic, monkeypatch
):
    resets = []
    near = own_near_cache(resets)
    assert near.connected
    assert resets == []  # the first connection missed nothing
    caches["default"]._cache.get_client().client_kill_filter(_id=near.client_id)
    while near.connected:
        time.sleep(0.001)
    fake_monotonic.now += near_cache_module.RECONNECT_INTERVAL
    assert near.connected
    assert len(resets) >= 1
    near.close()


@requires_redis
def test_a_forked_child_builds_its_own(near):
    assert near.connected
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        child = session_cache.near_cache()
        ok = child is not near and child.pid == os.getpid() and child.connected
        os._exit(0 if ok and child.client_id != near.client_id else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert near.connected  # the parent's connection is untouched


# Credentials that match no session


def test_an_unknown_token_is_remembered_so_its_repeat_costs_no_query(
    api, user, django_assert_num_queries
):
    token = opaque.generate()
    with django_assert_num_queries(1):
        assert get_protected(api, token).json()["code"] == "invalid_token"
    with django_assert_num_queries(0):
        assert get_protected(api, token).json()["code"] == "invalid_token"


def test_unknown_tokens_are_not_remembered_with_a_zero_timeout(
    api, user, settings, django_assert_num_queries
):
    settings.TESSERA = {"UNKNOWN_TOKEN_CACHE_TIMEOUT": timedelta(0)}
    token = opaque.generate()
    get_protected(api, token)
    with django_assert_num_queries(1):
        assert get_protected(api, token).status_code == 401


def test_an_imported_session_is_not_refused_as_remembered_unknown(user):
    token = opaque.generate()
    digest = opaque.digest(token)
    session_cache.remember_unknown(digest)
    now = timezone.now()
    imported = Session(
        user=user, kind="token", token_digest=digest, created_at=now, last_used_at=now
    )
    assert session_service.import_sessions([imported]) == 1
    assert session_service.authenticate_token(token).pk == imported.pk


@override_settings(CACHES={"default": UNREACHABLE_REDIS})
def test_settings_changes_rebuild_it():
    first = session_cache.near_cache()
    with override_settings(TESSERA={"NEAR_CACHE_MAX_ENTRIES": 7}):
        assert session_cache.near_cache().max_entries == 7
    assert session_cache.near_cache() is not first


@requires_redis
@pytest.mark.django_db(transaction=True)
def test_under_asgi_a_warm_session_is_served_and_a_logout_refused_next(user, login, near):
    import asyncio

    from django.test import AsyncClient

    token = login()["token"]
    client, headers = AsyncClient(), {"Authorization": f"Token {token}"}

    async def scenario() -> list[int]:
        protected = [await client.get("/api/protected/", headers=headers) for _ in range(3)]
        logout = await client.post("/api/auth/logout/", headers=headers)
        after = await client.get("/api/protected/", headers=headers)
        return [response.status_code for response in (*protected, logout, after)]

    assert asyncio.run(scenario()) == [200, 200, 200, 204, 401]


@requires_redis
def test_a_dropped_connection_makes_the_same_request_replay_before_reading_redis(
    api, warm_token, near
):
    """Redis restarted with saved data: the first request after must not trust it."""
    Session.objects.update(revoked_at=timezone.now())
    PendingCacheInvalidation.objects.create(
        token_digest=opaque.digest(warm_token), action=CacheInvalidation.TOMBSTONE
    )
    caches["default"]._cache.get_client().client_kill_filter(_id=near.client_id)
    time.sleep(0.05)  # the connection's end reaches this process; nothing has read it yet
    assert get_protected(api, warm_token).status_code == 401
    assert not PendingCacheInvalidation.objects.exists()
