"""Test settings: the demo project, made fast and deterministic.

DATABASE_URL and REDIS_URL pick PostgreSQL and Redis exactly as for the demo; without
them the suite runs on SQLite and a local-memory cache.
"""

from demo.settings import *  # noqa: F403

SECRET_KEY = "tests-only-secret-key-with-more-than-32-bytes-of-length"
DEBUG = False
# The fastest hasher: tests count hasher calls instead of timing them.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
TESSERA = {}
# The libraries Tessera replaces, installed so the import commands and compatibility
# paths are tested against tokens those libraries really made.
INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken", "knox"]  # noqa: F405
LOGGING = {"version": 1, "disable_existing_loggers": False}
