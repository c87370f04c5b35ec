"""Browser sessions for single-page apps: a Tessera Session carried by Django's session.

The Django session stores only the digest of the Tessera session, under
:data:`SESSION_KEY`. Authentication looks the digest up through
:func:`tessera.services.sessions.authenticate_digest`, so browser sessions share the
cache, revocation and expiry of every other credential kind and are listed and revoked
in ``sessions/`` like any device.

``session/login/`` does not use Django's ``login()``: that would also log the browser in
to Django's own views (the admin). A login Django makes itself is bound here too, under
:data:`DJANGO_LOGIN_KEY` (see :mod:`tessera.services.django_logins`). The protections of
Django's login are applied by hand: the session key is cycled (no fixation) and the CSRF
token rotated, and ``user_logged_in`` is sent (by
:func:`tessera.services.sessions.open_session`), which updates ``last_login``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import SESSION_KEY as DJANGO_USER_KEY
from django.contrib.auth import user_logged_out
from django.middleware.csrf import rotate_token
from rest_framework import exceptions

from ..models import RevokeReason, Session, SessionKind
from .sessions import authenticate_digest, open_session, revoke_sessions

# The browser session that authenticates API requests (SessionAuthentication).
SESSION_KEY = "_tessera_session_digest"
# The browser session a login through Django's own login() opened; the Django-login
# middleware keeps that login alive only while it lives (services.django_logins).
DJANGO_LOGIN_KEY = "_tessera_django_login_digest"


def open_browser_session(
    request,
    user,
    device_name: str = "",
    *,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
    provider: str = "",
    device_key: str = "",
) -> Session:
    """Open a browser session and bind it to a fresh Django session, atomically."""
    return bind_new_session(
        request._request,
        user,
        request=request,
        device_name=device_name,
        fresh_django_session=True,
        amr=amr,
        mfa_enrolment_required=mfa_enrolment_required,
        provider=provider,
        device_key=device_key,
    )


def bind_new_session(
    django_request,
    user,
    *,
    request,
    device_name: str,
    fresh_django_session: bool,
    django_login: bool = False,
    api_access: bool = True,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
    provider: str = "",
    device_key: str = "",
) -> Session:
    """Open a browser session bound to ``django_request``'s Django session.

    The session bound there for API requests before (and, for a Django login, the
    previous Django login's) is ended rather than orphaned.
    ``fresh_django_session`` gives the browser a new session key and CSRF token (a
    login Django made itself has done both already); a Django login of another user in
    the same browser ends with it, as Django's own login would end it. ``django_login``
    binds the session as the Django login's, ``api_access`` as the one API requests
    authenticate with.
    """
    if django_login:
        revoke_django_login(django_request, RevokeReason.LOGOUT)
    else:
        revoke_bound_session(django_request, RevokeReason.LOGOUT)
    store = django_request.session

    def bind(session: Session, _token: str) -> Session:
        # The bearer token is never shown: the Django session carries the digest.
        if fresh_django_session:
            if str(store.get(DJANGO_USER_KEY, user.pk)) != str(user.pk):
                _revoke_digests([store.get(DJANGO_LOGIN_KEY)], RevokeReason.LOGOUT)
                store.flush()
            else:
                store.cycle_key()
            rotate_token(django_request)
        if django_login:
            store[DJANGO_LOGIN_KEY] = session.token_digest
        if api_access:
            store[SESSION_KEY] = session.token_digest
        return session

    return open_session(
        user,
        kind=SessionKind.BROWSER,
        request=request,
        device_name=device_name,
        issue=bind,
        amr=amr,
        mfa_enrolment_required=mfa_enrolment_required,
        provider=provider,
        device_key=device_key,
    )


def bound_session(store, key: str = SESSION_KEY) -> Session | None:
    """The live browser session the Django session ``store`` carries under ``key``.

    A Django session that carries one no longer alive (ended, expired, or not a browser
    session) is flushed, which logs the browser out. ServiceUnavailable propagates.
    """
    digest = store.get(key) if store is not None else None
    if not isinstance(digest, str):
        return None
    try:
        session = authenticate_digest(digest)
    except exceptions.AuthenticationFailed:
        store.flush()
        return None
    if session.kind != SessionKind.BROWSER:
        store.flush()
        return None
    return session


def logout(request) -> None:
    """Revoke the browser session of this request and empty the Django session."""
    if isinstance(request.auth, Session):
        revoke_sessions([request.auth], RevokeReason.LOGOUT)
    user_logged_out.send(
        sender=request.user.__class__, request=request, user=request.user, tessera=True
    )
    request._request.session.flush()


def revoke_bound_session(django_request, reason: str) -> None:
    """End the browser session bound to this Django session for API requests, unless it
    is the Django login's own, which ends with that login."""
    store = django_request.session
    digest = store.get(SESSION_KEY)
    if digest != store.get(DJANGO_LOGIN_KEY):
        _revoke_digests([digest], reason)


def revoke_django_login(django_request, reason: str) -> None:
    """End both browser sessions a Django session may carry: Django's logout empties it."""
    store = django_request.session
    _revoke_digests([store.get(SESSION_KEY), store.get(DJANGO_LOGIN_KEY)], reason)


def _revoke_digests(digests: list, reason: str) -> None:
    digests = [d for d in digests if isinstance(d, str)]
    if digests:
        revoke_sessions(
            Session.objects.live().filter(token_digest__in=digests, kind=SessionKind.BROWSER),
            reason,
        )
