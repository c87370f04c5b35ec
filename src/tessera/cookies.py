"""The cookies Tessera sets: the JWT cookies of cookie mode (``JWT_COOKIES``), and the
known-device cookie of cookie and browser modes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.response import Response

from .conf import tessera_settings
from .models import Session


def set_token_cookies(response: Response, pair) -> None:
    """HttpOnly cookies; the refresh cookie is only ever sent to the refresh endpoint.

    Neither cookie outlives the session's absolute expiry: a browser should not keep
    sending a credential the server will refuse.
    """
    common = {
        "secure": tessera_settings.JWT_COOKIE_SECURE,
        "httponly": True,
        "samesite": tessera_settings.JWT_COOKIE_SAMESITE,
        "domain": tessera_settings.JWT_COOKIE_DOMAIN,
    }
    response.set_cookie(
        tessera_settings.JWT_ACCESS_COOKIE,
        pair.access,
        max_age=_cookie_age(pair.session, tessera_settings.JWT_ACCESS_LIFETIME),
        **common,
    )
    response.set_cookie(
        tessera_settings.JWT_REFRESH_COOKIE,
        pair.refresh,
        path=reverse("tessera:jwt-refresh"),
        max_age=_cookie_age(pair.session, tessera_settings.JWT_REFRESH_LIFETIME),
        **common,
    )


def _cookie_age(session: Session, lifetime: timedelta) -> int:
    seconds = lifetime.total_seconds()
    if session.expires_at is not None:
        seconds = min(seconds, (session.expires_at - timezone.now()).total_seconds())
    return max(int(seconds), 0)


def delete_token_cookies(response: Response) -> None:
    domain = tessera_settings.JWT_COOKIE_DOMAIN
    response.delete_cookie(tessera_settings.JWT_ACCESS_COOKIE, domain=domain)
    response.delete_cookie(
        tessera_settings.JWT_REFRESH_COOKIE, path=reverse("tessera:jwt-refresh"), domain=domain
    )


def set_device_cookie(response: Response, device: str, *, browser_session: bool) -> None:
    """The known-device identifier as an HttpOnly cookie, sent to every path (the admin's
    login counts it too), with the flags of the cookies beside it: Django's session
    cookie's for a browser session, the JWT cookies' in cookie mode."""
    if browser_session:
        flags = {
            "secure": settings.SESSION_COOKIE_SECURE,
            "samesite": settings.SESSION_COOKIE_SAMESITE,
            "domain": settings.SESSION_COOKIE_DOMAIN,
        }
    else:
        flags = {
            "secure": tessera_settings.JWT_COOKIE_SECURE,
            "samesite": tessera_settings.JWT_COOKIE_SAMESITE,
            "domain": tessera_settings.JWT_COOKIE_DOMAIN,
        }
    response.set_cookie(
        tessera_settings.DEVICE_COOKIE,
        device,
        max_age=int(tessera_settings.DEVICE_LIFETIME.total_seconds()),
        httponly=True,
        **flags,
    )
