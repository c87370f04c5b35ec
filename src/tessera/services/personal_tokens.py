"""Personal access tokens: named, scoped, long-lived sessions for scripts and CI.

A personal access token is a :class:`~tessera.models.Session` of kind ``pat`` with the
same opaque token format as a login, so the one ``TokenAuthentication`` class serves
both. It differs in three ways: its scopes are chosen at creation (never more than the
creating session may use), its expiry is chosen too (bounded by ``PAT_MAX_TTL``) and
does not slide with use, and only a recent authentication (a login or
``reauthenticate/`` within ``PAT_FRESH_LOGIN``, or, for an account without a second
factor, the password given again) may create one, so a stolen long-idle session cannot
mint itself a durable credential.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from ..conf import tessera_settings
from ..errors import FreshLoginRequired, PersonalTokenLimitReached, PersonalTokenNotAllowed
from ..models import RevokeReason, Session, SessionKind
from .login import check_credentials, identifier_of
from .mfa import factors, stepup
from .scopes import granted_scopes
from .sessions import IssuedToken, open_session, revoke_own_session


def create_personal_token(
    request,
    *,
    name: str,
    scopes: list[str],
    lifetime: timedelta | None,
    password: str | None = None,
) -> IssuedToken:
    """Mint a personal access token for the request's user.

    ``lifetime`` None means the token never expires; callers bound it by
    ``PAT_MAX_TTL`` (the serializer does). The live-token limit is counted under a lock
    on the user's row, so concurrent creations cannot pass it together.
    """
    user, session = request.user, request.auth
    if isinstance(session, Session) and session.kind == SessionKind.PAT:
        raise PersonalTokenNotAllowed(
            _("A personal access token cannot create personal access tokens.")
        )
    _require_fresh_login(request, password)
    not_granted = sorted(set(scopes) - granted_scopes(user, session))
    if not_granted:
        raise exceptions.ValidationError(
            {"scopes": [f"You do not hold the scope {scope!r}." for scope in not_granted]},
            code="not_held",
        )
    now = timezone.now()
    with transaction.atomic():
        _enforce_token_limit(user, now)
        return open_session(
            user,
            kind=SessionKind.PAT,
            request=request,
            device_name=name,
            scopes=sorted(set(scopes)),
            expires_at=now + lifetime if lifetime is not None else None,
            is_login=False,
            amr=(),
        )


def _require_fresh_login(request, password: str | None) -> None:
    """An authentication within PAT_FRESH_LOGIN, or the right password, or refusal.

    A password that is given is always checked, through the login throttles, so this
    endpoint cannot be used to guess passwords faster than the login endpoint. For an
    account with a second factor the password alone is not enough: its owner
    reauthenticates with the factor first.
    """
    if password is not None:
        user = request.user
        try:
            confirmed = check_credentials(request, identifier_of(user), password)
        except exceptions.AuthenticationFailed:
            confirmed = None
        if confirmed is None or confirmed.pk != user.pk:
            raise exceptions.ValidationError(
                {"password": ["The password is not correct."]}, code="incorrect"
            )
        if not factors.has_factor(user):
            return
    if stepup.is_recent(request, tessera_settings.PAT_FRESH_LOGIN):
        return
    if factors.has_factor(request.user):
        raise FreshLoginRequired(
            _("Creating a personal access token needs a recent login: reauthenticate/ first.")
        )
    raise FreshLoginRequired()


def _enforce_token_limit(user, now) -> None:
    limit = tessera_settings.PAT_LIMIT_PER_USER
    if limit is None:
        return
    user_model = get_user_model()
    # The lock is what makes "count, then create" safe under concurrent requests.
    list(user_model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk"))
    live = Session.objects.live(now).filter(user=user, kind=SessionKind.PAT).count()
    if live >= limit:
        raise PersonalTokenLimitReached()


def list_personal_tokens(user):
    """The user's live personal access tokens, newest first."""
    return Session.objects.live().filter(user=user, kind=SessionKind.PAT).order_by("-created_at")


def revoke_personal_token(user, token_id: str) -> None:
    """Revoke one of the user's tokens; anything else (another user's) is 404.

    Revoked tokens are found too, so a retry after a failed cache write completes the
    revocation (see :func:`tessera.services.sessions.revoke_own_session`).
    """
    try:
        revoke_own_session(user, token_id, RevokeReason.USER, kind=SessionKind.PAT)
    except exceptions.NotFound as exc:
        raise exceptions.NotFound("No such personal access token.") from exc
