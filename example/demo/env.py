"""Read the demo's database and cache from DATABASE_URL and REDIS_URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit


def database_from_url(url: str | None, default_sqlite: Path) -> dict:
    """``postgres://user:pass@host:port/name`` or ``sqlite:///path``; None gives the default."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)}
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        name = unquote(parts.path[1:]) or ":memory:"
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (postgres, sqlite).")


def cache_from_url(url: str | None) -> dict:
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {"BACKEND": "tessera.cache.RedisCache", "LOCATION": url}
