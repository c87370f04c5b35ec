"""The cache alias Tessera keeps sessions and throttle counters in."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from ..conf import tessera_settings


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
    backend = caches[alias].get("BACKEND", "")
    if not settings.DEBUG and backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                f"The cache {alias!r} is per-process ({backend.rsplit('.', 1)[-1]}): with "
                "several app processes, a revoked session stays usable on the others for "
                "up to CACHE_TIMEOUT and throttle counters are not shared.",
                hint="Use Redis (tessera.cache.RedisCache) in production.",
                obj="TESSERA",
                id="tessera.W002",
            )
        ]
    return []
