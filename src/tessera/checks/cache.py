"""The cache alias Tessera keeps sessions and throttle counters in, and the near cache."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches as django_caches
from django.core.cache.backends.redis import RedisCache
from django.core.checks import CheckMessage, Error, Warning

from ..conf import tessera_settings
from ..session_cache import near_cache_problem


def cache_messages() -> list[CheckMessage]:
    alias = tessera_settings.CACHE_ALIAS
    caches = getattr(settings, "CACHES", {})
    if not isinstance(alias, str):
        return []  # reported as tessera.E002
    if alias not in caches:
        return [
            Error(
                f"TESSERA['CACHE_ALIAS'] names the cache {alias!r}, which CACHES lacks.",
                obj="TESSERA",
                id="tessera.E007",
            )
        ]
    messages = near_cache_messages()
    backend = caches[alias].get("BACKEND", "")
    if not settings.DEBUG and backend.endswith(("LocMemCache", "DummyCache")):
        return messages + [
            Warning(
                f"The cache {alias!r} is per-process ({backend.rsplit('.', 1)[-1]}): with "
                "several app processes, a revoked session stays usable on the others for "
                "up to CACHE_TIMEOUT and throttle counters are not shared.",
                hint="Use Redis (tessera.cache.RedisCache) in production.",
                obj="TESSERA",
                id="tessera.W002",
            )
        ]
    return messages


def near_cache_messages() -> list[CheckMessage]:
    wanted = tessera_settings.NEAR_CACHE
    if wanted is not None and wanted is not True:
        return []  # off, or reported as tessera.E002
    problem = near_cache_problem()
    if problem is None:
        return []
    if wanted is True:
        return [
            Error(
                f"TESSERA['NEAR_CACHE'] is True, but {problem}.",
                hint="It needs tessera.cache.RedisCache (Redis 6 or later) on one server, "
                "with keys that keep their prefix (docs/caching.md); or leave NEAR_CACHE "
                "at None.",
                obj="TESSERA",
                id="tessera.E016",
            )
        ]
    if isinstance(django_caches[tessera_settings.CACHE_ALIAS], RedisCache):
        # Redis, yet the near cache cannot run: a surprise worth a warning. Without Redis
        # it is simply not meant to.
        return [
            Warning(
                f"The near cache is off: {problem}.",
                hint="It needs one Redis server and keys that keep their prefix "
                "(docs/caching.md); set TESSERA['NEAR_CACHE'] = False to silence this.",
                obj="TESSERA",
                id="tessera.W004",
            )
        ]
    return []
