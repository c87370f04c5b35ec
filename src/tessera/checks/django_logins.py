"""Django's own logins as Tessera sessions need the middleware to be ended."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Warning

from ..conf import tessera_settings

MIDDLEWARE = "tessera.middleware.DjangoLoginSessionMiddleware"
AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def check_django_login_middleware(app_configs=None, **kwargs) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if not tessera_settings.DJANGO_LOGIN_SESSIONS or AUTHENTICATION_MIDDLEWARE not in middleware:
        return []
    if MIDDLEWARE in middleware and middleware.index(MIDDLEWARE) > middleware.index(
        AUTHENTICATION_MIDDLEWARE
    ):
        return []
    return [
        Warning(
            "Logins through Django's login() are recorded as Tessera sessions, but ending "
            "one would not log that browser out of Django's views.",
            hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE right after {AUTHENTICATION_MIDDLEWARE!r}, "
            "or set TESSERA['DJANGO_LOGIN_SESSIONS'] = False.",
            id="tessera.W005",
        )
    ]
