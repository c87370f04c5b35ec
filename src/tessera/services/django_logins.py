"""Logins through ``django.contrib.auth.login`` (the admin, any Django view) as Tessera
browser sessions.

Django's own login writes the user id into the Django session and nothing else, so
"where am I logged in" would miss it and no revocation would reach it. Here such a login
opens a browser session through :func:`~tessera.services.sessions.open_session`, bound to
the Django session exactly like ``session/login/`` binds one, so it is listed in
``sessions/`` and ended by everything that ends sessions; and
:class:`tessera.middleware.DjangoLoginSessionMiddleware` checks on every request that a
Django-authenticated browser's session is still alive, logging the browser out from the
next request on when it is not. The check is the hot path's (near cache, no write in
steady state), so it costs what authenticating a token costs.

A middleware rather than a session engine: it works with whatever ``SESSION_ENGINE`` the
project uses, and it runs where the logged-in user is known.
"""

from __future__ import annotations

import contextvars
from typing import Any

from django.contrib.auth import SESSION_KEY as DJANGO_USER_KEY
from django.contrib.auth.models import AnonymousUser

from ..conf import tessera_settings
from ..models import RevokeReason, Session
from .browser import DJANGO_LOGIN_KEY, bind_new_session, bound_session, revoke_django_login
from .mfa import factors, policy

DEVICE_NAME = "Django login"

# The Django request the middleware is serving: a password saved by a Django view (the
# admin's own password change) keeps that browser's login, as Django's
# update_session_auth_hash keeps its Django session.
current_request: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "tessera_django_request", default=None
)


def enabled() -> bool:
    return bool(tessera_settings.DJANGO_LOGIN_SESSIONS)


def record_login(request, user) -> Session:
    """Open the browser session of a login Django has just completed for ``user``
    (Django has cycled the session key and rotated the CSRF token itself).

    A Django login form checks the password alone: for a user with a second factor, or
    whom MFA_REQUIRED covers, the session keeps the Django login alive but does not
    authenticate API requests, which need the second factor.
    """
    return bind_new_session(
        request,
        user,
        request=request,
        device_name=DEVICE_NAME,
        fresh_django_session=False,
        django_login=True,
        api_access=not (factors.has_factor(user) or policy.covers(user)),
    )


def end_login(request) -> None:
    """Django's logout: end the browser session bound to this Django session."""
    if getattr(request, "session", None) is not None:
        revoke_django_login(request, RevokeReason.LOGOUT)


def check_request(request) -> None:
    """Log this browser out of Django when its Tessera session has ended.

    Only Django-authenticated requests are checked: a browser logged in through Django
    must carry a live browser session of the same user, else its Django session is
    flushed. ServiceUnavailable (cache and database down) is left to the caller.
    """
    store = getattr(request, "session", None)
    if store is None or DJANGO_USER_KEY not in store:
        return
    session = bound_session(store, DJANGO_LOGIN_KEY)
    if session is None or str(session.user_id) != str(store.get(DJANGO_USER_KEY)):
        store.flush()
        request.user = AnonymousUser()


def own_login_session(user) -> Session | None:
    """The live Django-login session of the request being served, if ``user`` is the one
    logged in there (someone changing their own password in the admin)."""
    request = current_request.get()
    store = getattr(request, "session", None)
    if store is None or str(store.get(DJANGO_USER_KEY)) != str(user.pk):
        return None
    digest = store.get(DJANGO_LOGIN_KEY)
    if not isinstance(digest, str):
        return None
    return Session.objects.live().filter(user=user, token_digest=digest).first()
