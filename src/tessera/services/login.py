"""Login: throttle, check the password, then open the session the client asked for.

The stages are separate functions so that other ways of proving who the user is join
the same pipeline: :func:`check_credentials` establishes the user, :func:`complete_login`
opens the session, or stops at ``mfa_required`` when the user has a second factor that
the login has not shown yet; :func:`complete_second_factor` then finishes that login.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ..conf import tessera_settings
from ..errors import (
    InvalidCredentials,
    InvalidTicket,
    MFANotSupported,
    MFARequired,
    SecondFactorRefused,
)
from ..models import LoginTicket, Session, SessionKind
from . import browser, device_notices, devices, jwt, lockout, throttling
from .client import client_key
from .mfa import factors, methods, policy, tickets
from .sessions import open_session
from .verification import email_of, require_verified, users_with_identity

# The credentials a login can end in.
TOKEN, JWT, SLIDING, BROWSER = "token", "jwt", "sliding", "browser"


def resolve_username(identifier: str) -> str | None:
    """The USERNAME_FIELD value to authenticate ``identifier`` as, or None when
    LOGIN_FIELDS rules it out.

    ``"email"`` lets an address name its account, ``"username"`` the login name; both are
    compared by identity key (NFKC, then case-folded), as sign-up compares them. An
    identifier that names no account passes on unchanged when usernames are allowed, so
    other backends see it as typed and ModelBackend fails it as it fails any unknown user.
    """
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    email_field = user_model.get_email_field_name()
    fields = set(tessera_settings.LOGIN_FIELDS)
    if email_field == username_field:
        # The login name is the address: either field name means it.
        by_username, by_email = bool(fields & {"username", "email"}), False
    else:
        by_username, by_email = "username" in fields, "email" in fields
    if by_email and "@" in identifier:
        holders = users_with_identity(email_field, identifier)
        if len(holders) == 1:
            return getattr(holders[0], username_field)
    if not by_username:
        return None
    typed = user_model.normalize_username(identifier)
    # The stored spelling first: one indexed query for nearly every login.
    if user_model._default_manager.filter(**{username_field: typed}).exists():
        return typed
    holders = users_with_identity(username_field, identifier)
    return getattr(holders[0], username_field) if len(holders) == 1 else identifier


def identifier_of(user) -> str:
    """What names ``user`` under LOGIN_FIELDS, for checking its password again."""
    user_model = get_user_model()
    if "username" in tessera_settings.LOGIN_FIELDS or (
        user_model.get_email_field_name() == user_model.USERNAME_FIELD
    ):
        return user.get_username()
    return email_of(user)


def check_credentials(request, identifier: str, password: str):
    """The user for these credentials, or InvalidCredentials.

    Attempts are counted per client IP, and a failure reserved in the lockout's buckets
    (:mod:`tessera.services.lockout`), before the password hasher runs; the reservation
    is given back if the password is right, or if the check could not be made. The
    hasher runs exactly once per attempt that is not refused: Django's ModelBackend runs
    it whether or not the user exists and refuses inactive users only after that, and an
    identifier that LOGIN_FIELDS rules out pays for one hash here. Every failure costs
    the same and reads the same.
    """
    # Merged over the defaults (conf.OPTIONS): only an explicit None switches it off.
    throttling.hit("login-ip", client_key(request), tessera_settings.LOGIN_THROTTLE_RATES.get("ip"))
    username = resolve_username(identifier)
    # One account, whether it is named by username or by e-mail address, in any
    # spelling that reaches it.
    reservation = lockout.reserve(request, username or identifier)
    if username is None:
        make_password(password)
        reservation.failed()
        raise InvalidCredentials()
    try:
        # Counted here already: LockoutModelBackend must not count it again.
        with lockout.counting_here():
            user = authenticate(request, username=username, password=password)
    except Exception:
        reservation.refund()
        raise
    # Backends such as AllowAllUsersModelBackend accept inactive users; Tessera does not.
    if user is None or not user.is_active:
        reservation.failed()
        raise InvalidCredentials()
    reservation.refund()
    # EMAIL_VERIFICATION='mandatory': checked only now, so that only someone who knows
    # the password learns the address is unverified (403 email_not_verified).
    require_verified(user)
    return user


@dataclass(frozen=True)
class LoginIntent:
    """What a login asks for once the user is known: which credential, for which device.

    Plain data on purpose: a login that must first pass another stage (a second factor)
    can carry it and finish later exactly as it would have finished now.
    """

    credential: str = TOKEN
    device_name: str = ""
    # The SOCIAL_PROVIDERS entry the user signed in through, recorded on the session.
    provider: str = ""

    def __post_init__(self) -> None:
        if self.credential not in CREDENTIALS:
            raise ValueError(f"Unknown credential {self.credential!r}.")


# How each credential a login can ask for is opened; every one goes through
# tessera.services.sessions.open_session. Each takes (request, user, device_name) and
# open_session's amr, mfa_enrolment_required, provider and device_key as keywords.
CREDENTIALS: dict[str, Callable[..., Any]] = {
    TOKEN: lambda request, user, device_name, **authentication: open_session(
        user, kind=SessionKind.TOKEN, request=request, device_name=device_name, **authentication
    ),
    JWT: jwt.open_pair_session,
    SLIDING: jwt.open_sliding_session,
    BROWSER: browser.open_browser_session,
}

PASSWORD_AMR = ("pwd",)


def login(request, identifier: str, password: str, intent: LoginIntent) -> Any:
    """Password login: check the credentials, then finish with what ``intent`` asks for."""
    return complete_login(request, check_credentials(request, identifier, password), intent)


def complete_login(request, user, intent: LoginIntent, *, amr: Sequence[str] = PASSWORD_AMR) -> Any:
    """Open the session ``intent`` asks for, for a user whose identity is established.

    Every way of logging in ends here, so limits, signals and the session list are the
    same for all of them. ``amr`` says how the user proved who they are (RFC 8176). If
    they have a second factor and ``amr`` lacks ``"mfa"``, no session opens: a login
    ticket is issued and :class:`~tessera.errors.MFARequired` raised (401
    ``mfa_required``). A user MFA_REQUIRED covers who has no factor gets a session that
    may only set one up. A login from a device the account has not used before queues
    the new-device e-mail (:mod:`~tessera.services.device_notices`). Returns the
    credential's own result: an :class:`~tessera.services.sessions.IssuedToken`, a JWT
    pair, a sliding token, or a browser session.
    """
    second_factor_shown = methods.MFA in amr
    if not second_factor_shown and factors.has_factor(user):
        names = methods.enrolled_methods(user)
        ticket, row = tickets.issue(request, user, intent, amr)
        raise MFARequired(ticket, names, methods.options(request, user, row, names))
    device_key = devices.request_device_key(request, user)
    # Decided before the session opens, which records this login as the user's last.
    new_device = device_key is None and device_notices.notice_due(request, user)
    result = CREDENTIALS[intent.credential](
        request,
        user,
        intent.device_name,
        amr=list(amr),
        mfa_enrolment_required=not second_factor_shown and policy.covers(user),
        provider=intent.provider,
        device_key=device_key or "",
    )
    if new_device:
        device_notices.notify_new_device(request, opened_session(result))
    return result


def opened_session(result: Any) -> Session:
    """The session behind what a credential's opener returned."""
    return result if isinstance(result, Session) else result.session


def complete_second_factor(request, ticket: LoginTicket, field: str, value: Any) -> Any:
    """Finish the login ``ticket`` started, with the proof in body field ``field``.

    The proof, the ticket's use and the new session commit together or not at all, so a
    login that fails at the last step (a session limit) spends neither code nor ticket.
    A wrong proof counts against the ticket and towards the lockout, outside that
    transaction; any other outcome gives the lockout's reservation back, after it. The result is
    what the started login would have returned (see :func:`complete_login`).
    """
    user = ticket.user
    methods.count_attempt(user, ticket)
    # A wrong second factor counts towards the lockout like a wrong password.
    reservation = lockout.reserve(request, user.get_username(), user=user)
    try:
        with transaction.atomic():
            verified = methods.verify(request, user, field, value, ticket=ticket)
            tickets.consume(ticket)
            result = complete_login(
                request,
                user,
                LoginIntent(ticket.credential, ticket.device_name, ticket.provider),
                amr=methods.combined_amr(ticket.amr, verified.amr),
            )
    except SecondFactorRefused:
        reservation.failed(field)
        if not tickets.record_failure(ticket):
            raise InvalidTicket(_("Too many wrong codes; log in again.")) from None
        raise
    except Exception:
        # Not a wrong proof (a proof this server cannot check, a session limit, an
        # outage): given back after the rollback, which would otherwise undo the refund.
        reservation.refund()
        raise
    reservation.refund()
    methods.announce_use(request, user, verified)
    return result


def require_password_only_account(user) -> None:
    """Refuse, for ways of signing in that cannot ask for a second factor (DRF's
    ``obtain_auth_token``, HTTP Basic), users with a factor or whom MFA_REQUIRED covers."""
    if factors.has_factor(user) or policy.covers(user):
        raise MFANotSupported()
