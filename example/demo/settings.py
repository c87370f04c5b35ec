"""Settings of the demo project. Not for production: DEBUG is on and the key is public.

DATABASE_URL (default: SQLite file beside manage.py) and REDIS_URL (default: local-memory
cache) choose the backing services, so the same project runs embedded or on PostgreSQL
and Redis.
"""

import os
from pathlib import Path

from demo.env import cache_from_url, database_from_url
from demo.provider import CLIENT_ID as DEMO_PROVIDER_CLIENT_ID
from demo.provider import CLIENT_SECRET as DEMO_PROVIDER_CLIENT_SECRET

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "demo-only-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's and Redoc's files served by the demo itself: the docs work offline.
    "drf_spectacular_sidecar",
    "tessera",
    "demo",
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

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"
ASGI_APPLICATION = "demo.asgi.application"

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

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL"), BASE_DIR / "db.sqlite3")}
CACHES = {"default": cache_from_url(os.environ.get("REDIS_URL"))}

# The admin's login counts its failures in Tessera's lockout, with the API's logins.
AUTHENTICATION_BACKENDS = ["tessera.backends.LockoutModelBackend"]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
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
        # The browsable API, logged in at /api-auth/login/ (tessera.urls.browsable).
        "tessera.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "tessera.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# Where the demo is opened: the passkeys' origin and the base of the e-mails' links.
DEMO_ORIGIN = os.environ.get("DEMO_ORIGIN", "http://localhost:8000")

TESSERA = {
    # The scopes a personal access token may be given (see docs/permissions.md).
    "SCOPES": {
        "read": "Read access.",
        "write": "Write access.",
        "posts:read": "Read your own posts.",
        "posts:write": "Create, change and delete posts.",
    },
    # Passkeys for the pages at / and /passkeys/ (docs/passkeys.md). Browsers allow WebAuthn
    # over plain HTTP on localhost only: open http://localhost:8000/, not 127.0.0.1.
    "WEBAUTHN_RP_ID": "localhost",
    "WEBAUTHN_RP_NAME": "Tessera demo",
    "WEBAUTHN_ORIGINS": [DEMO_ORIGIN],
    "SITE_NAME": "Tessera demo",
    # The page at / logs in with JWT cookie mode too (docs/jwt.md): HttpOnly cookies, and a
    # CSRF token on every unsafe request they authenticate. Plain HTTP is for local use.
    "JWT_COOKIES": True,
    "JWT_COOKIE_SECURE": not DEBUG,
    # Social sign-in (docs/social.md) with the demo's own OpenID provider: start it with
    # `python manage.py demo_provider`, then open http://localhost:8000/social/.
    "SOCIAL_PROVIDERS": {
        "demo": {
            "type": "oidc",
            "issuer": os.environ.get("DEMO_PROVIDER_URL", "http://127.0.0.1:8001"),
            "client_id": DEMO_PROVIDER_CLIENT_ID,
            "client_secret": DEMO_PROVIDER_CLIENT_SECRET,
            "link_verified_email": True,
        },
    },
    # The links of the e-mails open the demo page, which posts the key back.
    "FRONTEND_URLS": {
        "verify_email": DEMO_ORIGIN + "/?verify_email={key}",
        "password_reset": DEMO_ORIGIN + "/?reset_uid={uid}&reset_token={token}",
        "login": DEMO_ORIGIN + "/",
        "social_callback": DEMO_ORIGIN + "/social/?code={code}",
        "social_error": DEMO_ORIGIN + "/social/?error={error}",
        "social_linked": DEMO_ORIGIN + "/social/?linked={provider}",
        "not_me": DEMO_ORIGIN + "/?not_me={token}",
    },
}

# Resource-server mode (docs/federation.md): access tokens of another issuer, e.g. the
# fake one of `python -m tests.fake_issuer`, with DEMO_TRUSTED_ISSUER=http://127.0.0.1:8002.
DEMO_TRUSTED_ISSUER = os.environ.get("DEMO_TRUSTED_ISSUER")
if DEMO_TRUSTED_ISSUER:
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"].insert(
        0, "tessera.authentication.ExternalJWTAuthentication"
    )
    TESSERA["TRUSTED_ISSUERS"] = [
        {
            "issuer": DEMO_TRUSTED_ISSUER,
            "audience": "https://api.example.test",
            "algorithms": ["RS256"],
            "user": "create",
            "scopes_claim": "scope",
        }
    ]

SPECTACULAR_SETTINGS = {
    "TITLE": "Tessera demo API",
    "VERSION": "0.1.0",
    # Operations are tagged (grouped in Swagger UI, Redoc and the Postman collection) by
    # the first path segment after this prefix: login, jwt, sessions, mfa…
    "SCHEMA_PATH_PREFIX": r"/api/(auth/)?",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"tessera": {"handlers": ["console"], "level": "INFO"}},
}

# A browser SPA served from another localhost port, using JWT cookie mode:
#   DEMO_SPA_ORIGINS=http://localhost:5173 make demo
# Cookies are per host, not per port, so the SPA can read the CSRF cookie and send it
# back as X-CSRFToken; the token cookies stay HttpOnly. See docs/jwt.md.
SPA_ORIGINS = [o for o in os.environ.get("DEMO_SPA_ORIGINS", "").split(",") if o]
if SPA_ORIGINS:
    INSTALLED_APPS.append("corsheaders")
    MIDDLEWARE.insert(0, "corsheaders.middleware.CorsMiddleware")
    CORS_ALLOWED_ORIGINS = SPA_ORIGINS
    CORS_ALLOW_CREDENTIALS = True
    CSRF_TRUSTED_ORIGINS = SPA_ORIGINS
