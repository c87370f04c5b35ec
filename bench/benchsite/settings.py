"""Production-like settings for the benchmark server.

Every variant shares this one project, so middleware, database, cache and renderer are
identical and the only difference between two URLs is the authentication class.
BENCH_DATABASE_URL and BENCH_REDIS_URL choose the backing services (bench/run.py sets
them); BENCH_TESSERA_CACHE=none makes Tessera answer every lookup from PostgreSQL, which
is how the benchmark measures its cold path.
"""

import os
from datetime import timedelta
from urllib.parse import unquote, urlsplit

DATABASE_URL = urlsplit(
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tessera_bench")
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

SECRET_KEY = "benchmark-only-secret-key-0123456789-abcdefghijklmnop"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "knox",
    "tessera",
]

# Minimal, and the same for every variant: nothing here touches the database or cache.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(DATABASE_URL.path.lstrip("/")),
        "USER": unquote(DATABASE_URL.username or ""),
        "PASSWORD": unquote(DATABASE_URL.password or ""),
        "HOST": DATABASE_URL.hostname or "",
        "PORT": str(DATABASE_URL.port or ""),
        # Persistent connections, as in production: no connect cost per request.
        "CONN_MAX_AGE": None,
    }
}
CACHES = {
    "default": {"BACKEND": "tessera.cache.RedisCache", "LOCATION": REDIS_URL},
    "none": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
}

# Access tokens outlive the run, as simplejwt's do below.
TESSERA = {"JWT_ACCESS_LIFETIME": timedelta(days=1)}
if os.environ.get("BENCH_TESSERA_CACHE") == "none":
    TESSERA["CACHE_ALIAS"] = "none"
if os.environ.get("BENCH_TESSERA_JWT_STATELESS") == "1":
    TESSERA["JWT_REVOCATION_CHECK"] = False

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "tessera.errors.exception_handler",
}

# Long enough that no credential expires during a run.
SIMPLE_JWT = {"ACCESS_TOKEN_LIFETIME": timedelta(days=1)}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
