"""The second-factor methods, in one explicit table.

:data:`METHODS` lists each method a login can ask for: its name (as listed in
``mfa_required``), whether a user has it, and optionally what a client needs before it
can answer (e.g. WebAuthn request options for the login ticket), sent under
``options[name]``. :data:`VERIFIERS` says how a proof is checked, keyed by the body field
that carries it (``code`` for TOTP and recovery codes), for ``mfa/authenticate/`` and
``reauthenticate/`` alike. A new factor type adds its rows here.

A verifier returns :class:`Verified` or raises
:class:`~tessera.errors.SecondFactorRefused` on the field; callers count the attempt
first with :func:`count_attempt`, outside any transaction that could roll the count back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from ... import signals
from ...conf import tessera_settings
from ...errors import SecondFactorRefused, field_error
from ...models import Authenticator, AuthenticatorType, LoginTicket
from .. import throttling
from . import recovery_codes, totp, webauthn

# RFC 8176: a session whose amr holds two methods or more also carries "mfa".
MFA = "mfa"


@dataclass(frozen=True)
class Method:
    name: str
    enrolled: Callable[[Any], bool]
    # (request, user, ticket) -> what the client needs to answer, or None.
    options: Callable[[Any, Any, LoginTicket], dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class Verified:
    """A proof that passed: the factor it used, and the amr values it adds."""

    authenticator: Authenticator
    amr: tuple[str, ...]


# (request, user, value from the body, the login ticket or None) -> Verified
Verifier = Callable[[Any, Any, Any, LoginTicket | None], Verified]


def verify_code(request, user, code: Any, ticket: LoginTicket | None) -> Verified:
    """Six digits are a TOTP code; anything else is tried as a recovery code."""
    if not isinstance(code, str):
        raise SecondFactorRefused("code", _("The code is not correct."), "invalid_code")
    if totp.looks_like_code(code.replace(" ", "")):
        return Verified(totp.verify(user, code, "code"), ("otp",))
    return Verified(recovery_codes.use(user, code, "code"), ("otp",))


def verify_webauthn(request, user, credential: Any, ticket: LoginTicket | None) -> Verified:
    """A passkey's assertion, answering the ticket's challenge (or the user's, without one)."""
    assertion = webauthn.verify_proof(user, credential, ticket)
    return Verified(assertion.authenticator, assertion.amr)


METHODS: tuple[Method, ...] = (
    Method("totp", totp.is_enrolled),
    Method("webauthn", webauthn.is_enrolled, webauthn.ticket_options),
    Method("recovery_codes", recovery_codes.is_enrolled),
)
VERIFIERS: dict[str, Verifier] = {"code": verify_code, "webauthn": verify_webauthn}
# Every body field that can carry a proof, whether or not its verifier is installed.
PROOF_FIELDS = ("code", "webauthn")


def enrolled_methods(user) -> list[str]:
    return [method.name for method in METHODS if method.enrolled(user)]


def options(request, user, ticket: LoginTicket, names: list[str]) -> dict[str, Any]:
    """Per method in ``names``, what the client needs to answer it (methods that need
    nothing are left out)."""
    found = {}
    for method in METHODS:
        if method.name in names and method.options is not None:
            extra = method.options(request, user, ticket)
            if extra is not None:
                found[method.name] = extra
    return found


def count_attempt(user, ticket: LoginTicket | None = None) -> None:
    """Count a second-factor attempt before it is checked; 429 past MFA_THROTTLE_RATES."""
    rates = tessera_settings.MFA_THROTTLE_RATES
    if ticket is not None:
        throttling.hit("mfa-ticket", str(ticket.pk), rates.get("ticket"))
    throttling.hit("mfa-user", str(user.pk), rates.get("user"))


def verify(request, user, field: str, value: Any, *, ticket: LoginTicket | None = None):
    """Check the proof in body field ``field``: :class:`Verified`, or refusal."""
    verifier = VERIFIERS.get(field)
    if verifier is None:
        raise field_error(field, "This kind of second factor is not available here.", "unavailable")
    try:
        return verifier(request, user, value, ticket)
    except SecondFactorRefused as refusal:
        announce_failure(request, user, field, refusal, ticket)
        raise


def announce_failure(
    request, user, field: str, refusal: SecondFactorRefused, ticket: LoginTicket | None = None
) -> None:
    signals.mfa_failed.send(
        sender=Authenticator,
        user=user,
        field=field,
        code=refusal.get_codes()[field][0],
        ticket=ticket,
        request=request,
    )


def announce_use(request, user, verified: Verified) -> None:
    """Signals for a proof that took effect (a login or reauthentication went through)."""
    authenticator = verified.authenticator
    signals.mfa_factor_used.send(
        sender=Authenticator, user=user, authenticator=authenticator, request=request
    )
    if authenticator.type == AuthenticatorType.RECOVERY_CODES:
        signals.mfa_recovery_code_used.send(
            sender=Authenticator,
            user=user,
            authenticator=authenticator,
            remaining=recovery_codes.remaining(user),
            request=request,
        )


def combined_amr(*parts) -> list[str]:
    """The union of ``parts`` in order, with "mfa" when it holds two methods or more."""
    methods = list(dict.fromkeys(value for part in parts for value in part if value != MFA))
    return [*methods, MFA] if len(methods) >= 2 else methods
