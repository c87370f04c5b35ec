"""System checks that refuse broken or insecure Tessera configuration at start-up.

Errors (``tessera.E…``) stop ``manage.py`` commands; warnings (``tessera.W…``) are shown.
Every check id is listed in docs/settings.md. :meth:`tessera.apps.TesseraConfig.ready`
registers them once the app registry is loaded, so importing this package (a test does)
has no side effect.
"""

from __future__ import annotations

from django.core.checks import Tags, register

from .accounts import check_accounts
from .django_logins import check_django_login_middleware
from .external import check_trusted_issuers
from .jwt import check_jwt
from .legacy import check_authentication_order
from .mfa import check_mfa
from .settings import check_settings
from .social import check_social_providers
from .throttling import check_atomic_requests, check_lockout_backend
from .webauthn import check_webauthn

__all__ = [
    "check_accounts",
    "check_atomic_requests",
    "check_authentication_order",
    "check_jwt",
    "check_lockout_backend",
    "check_mfa",
    "check_settings",
    "check_social_providers",
    "check_trusted_issuers",
    "check_webauthn",
    "register_checks",
]


def register_checks() -> None:
    register(check_settings, Tags.security)
    register(check_jwt, Tags.security)
    register(check_accounts, Tags.security)
    register(check_mfa, Tags.security)
    register(check_authentication_order, Tags.security)
    register(check_webauthn, Tags.security)
    register(check_trusted_issuers, Tags.security)
    register(check_social_providers, Tags.security)
    register(check_django_login_middleware, Tags.security)
    register(check_lockout_backend, Tags.security)
    # Tagged database: it reads DATABASES, and Django runs it where databases are in play.
    register(check_atomic_requests, Tags.database)
