"""Step-up: how recently and how strongly a session proved who its user is.

Every login session records ``auth_time`` (when its user last proved who they are) and
``amr`` (how: RFC 8176 values such as ``pwd``, ``otp``, ``mfa``). ``reauthenticate/``
renews ``auth_time`` and adds the method used to ``amr``. Sessions opened before Tessera
recorded these (``auth_time`` NULL) never count as recent, and personal access tokens
have neither. A JWT session's values live in its Session row; the claims of its access
tokens are a copy as of their issue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotAuthenticated

from ...conf import tessera_settings
from ...errors import ReauthenticationRequired, SecondFactorRefused
from ...models import Session
from .. import sessions as session_service
from ..passwords import check_current_password
from ..users import fresh_user
from . import factors, methods

PASSWORD = "password"


def is_recent(request, max_age: timedelta | None = None) -> bool:
    """Whether the request's session proved its user within ``max_age``
    (MFA_RECENT_AUTH_MAX_AGE by default)."""
    session = session_service.session_of(request)
    if session is None or session.auth_time is None:
        return False
    max_age = max_age if max_age is not None else tessera_settings.MFA_RECENT_AUTH_MAX_AGE
    return timezone.now() - session.auth_time <= max_age


def require_recent_authentication(request, max_age: timedelta | None = None) -> None:
    if not is_recent(request, max_age):
        raise ReauthenticationRequired()


def has_mfa(request) -> bool:
    """Whether the request's session was signed in with a second factor."""
    session = session_service.session_of(request)
    return session is not None and methods.MFA in (session.amr or [])


def reauthenticate(request, field: str, value: Any) -> Session:
    """Prove again who the session's user is, with a password or a second factor.

    The session's ``auth_time`` becomes now and the method joins its ``amr``. A password
    runs the hasher once, after the per-user current-password throttle; a second factor
    counts against MFA_THROTTLE_RATES['user'].
    """
    session = session_service.session_of(request)
    if session is None:
        raise NotAuthenticated()
    user = request.user
    verified = None
    if field == PASSWORD:
        if factors.has_factor(user):
            # Otherwise a stolen session plus a phished password could remove the factor
            # or mint a lasting token: the step-up must be the second factor itself.
            raise SecondFactorRefused(
                PASSWORD,
                _("This account has a second factor: re-authenticate with it."),
                "second_factor_required",
            )
        check_current_password(request, fresh_user(user), value, PASSWORD)
        added: tuple[str, ...] = ("pwd",)
    else:
        methods.count_attempt(user)
        verified = methods.verify(request, user, field, value)
        added = verified.amr
    now = timezone.now()
    amr = methods.combined_amr(session.amr or [], added)
    session_service.update_live_sessions([session], auth_time=now, amr=amr)
    session.auth_time, session.amr = now, amr
    if verified is not None:
        methods.announce_use(request, user, verified)
    return session
