"""Settings of the suite's own project: Tessera, the test app and tests/urls.py.

DATABASE_URL (``postgres://user:pass@host:port/name``) and REDIS_URL (``redis://…``)
choose PostgreSQL and Redis, as ``.ci/run`` does for its second pass; without them the
suite runs on SQLite and a local-memory cache.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit


def database_from_url(url: str) -> dict:
    # Django's test runner keeps an SQLite test database in memory whatever its NAME, so a
    # sqlite: URL can only mean the default.
    parts = urlsplit(url)
    if not url or parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (postgres).")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


def cache_from_url(url: str) -> dict:
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {"BACKEND": "tessera.cache.RedisCache", "LOCATION": url}


SECRET_KEY = "tests-only-secret-key-with-more-than-32-bytes-of-length"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "tessera",
    "tests.testapp",
    # The libraries Tessera replaces, installed so the import commands and compatibility
    # paths are tested against tokens those libraries really made.
    "rest_framework.authtoken",
    "knox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tessera.middleware.DjangoLoginSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", ""))}
CACHES = {"default": cache_from_url(os.environ.get("REDIS_URL", ""))}

# Django's own logins (the admin) under Tessera's failure lockout.
AUTHENTICATION_BACKENDS = ["tessera.backends.LockoutModelBackend"]

# The fastest hasher: tests count hasher calls instead of timing them.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tessera.authentication.TokenAuthentication",
        "tessera.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "tessera.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Tessera's defaults; tests override what they exercise.
TESSERA: dict = {}
SPECTACULAR_SETTINGS = {"TITLE": "Tessera test API", "VERSION": "0.1.0"}

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
