"""Browser sessions for single-page apps: a Tessera Session carried by Django's session.

The Django session stores only the digest of the Tessera session, under
:data:`SESSION_KEY`. Authentication looks the digest up through
:func:`tessera.services.sessions.authenticate_digest`, so browser sessions share the
cache, revocation and expiry of every other credential kind and are listed and revoked
in ``sessions/`` like any device.

Django's ``login()`` is not used: it would also log the browser in to Django's own
views (the admin), where revoking the Tessera session would not reach. The same
protections are applied by hand: the session key is cycled (no fixation) and the CSRF
token rotated, and ``user_logged_in`` is sent (by
:func:`tessera.services.sessions.open_session`), which updates ``last_login``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import user_logged_out
from django.middleware.csrf import rotate_token
from rest_framework import exceptions

from ..models import RevokeReason, Session, SessionKind
from .sessions import authenticate_digest, open_session, revoke_sessions

SESSION_KEY = "_tessera_session_digest"


def open_browser_session(
    request,
    user,
    device_name: str = "",
    *,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
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
    )


def bind_new_session(
    django_request,
    user,
    *,
    request,
    device_name: str,
    fresh_django_session: bool,
    amr: Sequence[str] = ("pwd",),
    mfa_enrolment_required: bool = False,
) -> Session:
    """Open a browser session bound to ``django_request``'s Django session.

    A session bound there before is ended rather than orphaned. ``fresh_django_session``
    cycles the session key and rotates the CSRF token; a login Django made itself has
    done both already.
    """
    revoke_bound_session(django_request, RevokeReason.LOGOUT)

    def bind(session: Session, _token: str) -> Session:
        # The bearer token is never shown: the Django session carries the digest.
        if fresh_django_session:
            django_request.session.cycle_key()
            rotate_token(django_request)
        django_request.session[SESSION_KEY] = session.token_digest
        return session

    return open_session(
        user,
        kind=SessionKind.BROWSER,
        request=request,
        device_name=device_name,
        issue=bind,
        amr=amr,
        mfa_enrolment_required=mfa_enrolment_required,
    )


def bound_session(store) -> Session | None:
    """The live browser session the Django session ``store`` carries, if any.

    A Django session that carries one no longer alive (ended, expired, or not a browser
    session) is flushed, which logs the browser out. ServiceUnavailable propagates.
    """
    digest = store.get(SESSION_KEY) if store is not None else None
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
    """End the browser session bound to this Django session, if one is."""
    digest = django_request.session.get(SESSION_KEY)
    if isinstance(digest, str):
        revoke_sessions(
            Session.objects.live().filter(token_digest=digest, kind=SessionKind.BROWSER),
            reason,
        )
