"""Production-like settings for the benchmark server.

Every variant shares this one project, so middleware, database, cache and renderer are
identical and the only difference between two URLs is the authentication class.
BENCH_DATABASE_URL and BENCH_REDIS_URL choose the backing services (bench/run.py sets
them). Each of the other BENCH_* variables changes one thing for one server
configuration of bench/run.py: BENCH_TESSERA_CACHE=none makes Tessera answer every lookup
from PostgreSQL (its cold path), BENCH_TESSERA_JWT_STATELESS=1 skips the session check
of JWTs, BENCH_NEAR_CACHE=off turns off the near cache and the verified-JWT cache, and
BENCH_FAST_HASHER=1 makes logins cheap where their cost is not what is measured.
BENCH_LOAD=1 configures the server of bench/load.py: the fast hasher, counting its runs,
clients' addresses from X-Forwarded-For, and login rates for many simulated clients.
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

TESSERA = {
    # Access tokens outlive the run, as simplejwt's do below.
    "JWT_ACCESS_LIFETIME": timedelta(days=1),
    # The benchmark logs one account in from one address thousands of times a minute,
    # far past the default (20 a minute). The counters still run on every login, and so
    # does the lockout, which successes leave empty.
    "LOGIN_THROTTLE_RATES": {"ip": "1000000/min"},
}
if os.environ.get("BENCH_TESSERA_CACHE") == "none":
    TESSERA["CACHE_ALIAS"] = "none"
    # No cache to keep the login's buckets in: they are rows, as Tessera offers.
    TESSERA["THROTTLE_BACKEND"] = "database"
if os.environ.get("BENCH_TESSERA_JWT_STATELESS") == "1":
    TESSERA["JWT_REVOCATION_CHECK"] = False
if os.environ.get("BENCH_NEAR_CACHE") == "off":
    TESSERA["NEAR_CACHE"] = False
    TESSERA["JWT_VERIFIED_CACHE_SIZE"] = 0

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "tessera.errors.exception_handler",
}

# Long enough that no credential expires during a run.
SIMPLE_JWT = {"ACCESS_TOKEN_LIFETIME": timedelta(days=1)}

AUTHENTICATION_BACKENDS = ["tessera.backends.LockoutModelBackend"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
# Not a Django setting: bench/run.py hashes the password of the account that logs in on
# the fast-hasher servers with it.
FAST_PASSWORD_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
if os.environ.get("BENCH_FAST_HASHER") == "1":
    PASSWORD_HASHERS = [FAST_PASSWORD_HASHER]
if os.environ.get("BENCH_LOAD") == "1":
    # The fast hasher, so that the load measures Tessera rather than the hasher (whose
    # cost RESULTS.md gives apart), wrapped to count its runs in Redis.
    PASSWORD_HASHERS = ["benchsite.hashers.CountingPasswordHasher"]
    # bench/load.py stands for the reverse proxy: each simulated client sends its own
    # address, as a proxy would, so that no client shares a per-IP counter with another
    # or with the stuffing burst, whose attempts come from addresses of their own.
    TESSERA["NUM_PROXIES"] = 1
    # Tessera's defaults, pinned: the lockout's per-account rate is what the burst must
    # meet.
    TESSERA["LOGIN_THROTTLE_RATES"] = {"ip": "20/min"}
    TESSERA["LOCKOUT_RATES"] = {
        "ip": "50/hour",
        "account": "5/15min",
        "account_ip": "5/15min",
        "device": "10/15min",
    }
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
