"""tessera.cache.RedisCache: Django's Redis backend with one client per pool."""

from __future__ import annotations

import os

import pytest

from tessera.cache import RedisCache

from .conftest import requires_redis


def test_one_client_is_reused_per_pool():
    cache = RedisCache("redis://127.0.0.1:6379/0", {})
    first = cache._cache.get_client("a")
    assert cache._cache.get_client("b") is first
    assert cache._cache.get_client("c", write=True) is first


def test_replicas_each_get_their_own_client():
    cache = RedisCache("redis://127.0.0.1:6379/0,redis://127.0.0.1:6380/0", {})
    writer = cache._cache.get_client(write=True)
    readers = {id(cache._cache.get_client()) for _ in range(20)}
    assert id(writer) not in readers and len(readers) == 1


@requires_redis
def test_behaves_as_djangos_backend():
    cache = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "tessera-backend-test"})
    cache.set("k", {"session": 1}, 30)
    assert cache.get("k") == {"session": 1}
    assert cache.add("k", "other", 30) is False
    cache.add("n", 0, 30)
    assert cache.incr("n") == 1
    cache.delete_many(["k", "n"])
    assert cache.get("k") is None


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="checks the no-Redis default")
def test_local_memory_is_the_default_without_redis_url():
    from django.conf import settings

    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
