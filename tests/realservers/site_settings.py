"""The suite's project as the gunicorn servers and the control process run it.

tests/settings.py (tests.urls, the MD5 hasher) with DATABASE_URL and REDIS_URL pointing
at the servers the harness started, DEBUG off, and what hundreds of trials a minute
from one address need.
"""

from __future__ import annotations

import os
from datetime import timedelta

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, MIDDLEWARE

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# Each request thread keeps its connection, as a production deployment would.
DATABASES["default"]["CONN_MAX_AGE"] = 60
# Outermost, so that answers a middleware gives by itself (a 503) name their worker too.
MIDDLEWARE = ["tests.realservers.middleware.worker_pid_header", *MIDDLEWARE]

# E-mails sent by any server land in files the tests read (reset links).
EMAIL_BACKEND = "tests.realservers.mailbox.MailboxBackend"
MAILBOX_DIR = os.environ.get("TESSERA_MAILBOX_DIR", "")

TESSERA = {
    # Hundreds of logins, resets and new-device links from one address in a few seconds. The failure
    # lockout stays on per account (every trial has accounts of its own), its buckets in
    # PostgreSQL: the cache fault tests log in while Redis is down, which a lockout kept
    # in Redis refuses (503) by design.
    "LOGIN_THROTTLE_RATES": {"ip": None},
    "LOCKOUT_RATES": {"ip": None, "account_ip": None},
    "THROTTLE_BACKEND": "database",
    "ACCOUNT_THROTTLE_RATES": {
        "password_reset_ip": None,
        "password_reset_email": None,
        "password_reset_confirm_ip": None,
        "current_password_user": None,
        "not_me_ip": None,
    },
    # A rotated refresh token presented again revokes its session at once, not only
    # after the 10 s during which a racing client would get the same successor.
    "JWT_REUSE_GRACE": timedelta(0),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"tessera": {"handlers": ["stderr"], "level": "WARNING"}},
}
