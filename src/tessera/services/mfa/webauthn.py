"""Passkeys (WebAuthn): registration, second factor, re-authentication, passwordless login.

The ceremonies are verified by py_webauthn (attestation and assertion per the WebAuthn
specification, signatures through ``cryptography``). Before handing a response to it,
Tessera reads the response's client data and authenticator data itself, only to say
which check failed (challenge, origin, relying party, user verification) with a code of
its own; the library then verifies everything again, the signature included.

Challenges are random, stored as ``sha256`` and bound to one purpose and to the user or
the login ticket they were issued for (a passwordless challenge to neither). Each is
consumed by one conditional UPDATE before its response is verified, inside the
transaction of the whole step: a response that succeeds uses the challenge up, even
when two arrive at once, and a refused one changes nothing.

As a second factor a passkey is the ``webauthn`` row of :mod:`.methods`: its request
options go out with ``mfa_required``, and :func:`verify_proof` checks the ``webauthn``
field of ``mfa/authenticate/`` and ``reauthenticate/``. Passwordless login is
:mod:`.passwordless`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    generate_challenge,
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.decode_credential_public_key import decode_credential_public_key
from webauthn.helpers.decoded_public_key_to_cryptography import (
    decoded_public_key_to_cryptography,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    ClientDataType,
    CollectedClientData,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ...conf import tessera_settings
from ...errors import (
    PasskeysDisabled,
    SecondFactorRefused,
    WebAuthnChallengeInvalid,
    WebAuthnCredentialNotDiscoverable,
    WebAuthnCredentialNotPasswordless,
    WebAuthnCredentialRegistered,
    WebAuthnCredentialUnknown,
    WebAuthnOriginInvalid,
    WebAuthnRelyingPartyInvalid,
    WebAuthnResponseInvalid,
    WebAuthnSignatureInvalid,
    WebAuthnSignCountRegressed,
    WebAuthnUserNotVerified,
    field_error,
)
from ...models import (
    Authenticator,
    AuthenticatorType,
    LoginTicket,
    WebAuthnChallenge,
    WebAuthnChallengePurpose,
)
from .. import throttling
from . import factors

DEFAULT_NAME = "Passkey"
# The body field of mfa/authenticate/ and reauthenticate/ that carries an assertion.
PROOF_FIELD = "webauthn"
# What py_webauthn and its parsers raise on bytes a client made up: bad input, a 400,
# never a 500. RecursionError: a deeply nested clientDataJSON (JSON inside base64, parsed
# again after the request body).
_MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, IndexError, RecursionError)
# The WebAuthn limit on a credential id: longer ones come from no real authenticator.
MAX_CREDENTIAL_ID_BYTES = 1023


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: tuple[str, ...]


def enabled() -> bool:
    return bool(tessera_settings.WEBAUTHN_RP_ID)


def relying_party() -> RelyingParty:
    """The configured relying party; PasskeysDisabled (404) while WEBAUTHN_RP_ID is unset."""
    rp_id = tessera_settings.WEBAUTHN_RP_ID
    if not enabled():
        raise PasskeysDisabled()
    return RelyingParty(
        id=rp_id,
        name=tessera_settings.WEBAUTHN_RP_NAME or rp_id,
        origins=tuple(tessera_settings.WEBAUTHN_ORIGINS),
    )


@dataclass(frozen=True)
class Assertion:
    """A verified use of a passkey: which one, and whether the user was verified."""

    authenticator: Authenticator
    user_verified: bool

    @property
    def amr(self) -> tuple[str, ...]:
        """RFC 8176 methods: a hardware-held key, and the user verified by it."""
        return ("hwk", "user") if self.user_verified else ("hwk",)


def user_passkeys(user):
    return Authenticator.objects.filter(user=user, type=AuthenticatorType.WEBAUTHN)


def user_handle(user) -> bytes:
    """The WebAuthn user handle: the primary key, which names the account and no person."""
    return str(user.pk).encode()


# --- Challenges ---------------------------------------------------------------------------


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _issue_challenge(purpose: str, *, user=None, ticket: LoginTicket | None = None) -> bytes:
    # py_webauthn's own generator (64 bytes from `secrets`), called here so that the
    # digest is stored before the options leave.
    challenge = generate_challenge()
    now = timezone.now()
    WebAuthnChallenge.objects.create(
        digest=_digest(challenge),
        purpose=purpose,
        user=user,
        ticket=ticket,
        created_at=now,
        expires_at=now + tessera_settings.WEBAUTHN_CHALLENGE_TTL,
    )
    return challenge


def _consume_challenge(
    challenge: bytes, purpose: str, *, user=None, ticket: LoginTicket | None = None
) -> None:
    """Mark the challenge used, in one UPDATE that only an unused, live, matching row passes."""
    now = timezone.now()
    consumed = WebAuthnChallenge.objects.filter(
        digest=_digest(challenge),
        purpose=purpose,
        user=user,
        ticket=ticket,
        used_at__isnull=True,
        expires_at__gt=now,
    ).update(used_at=now)
    if consumed != 1:
        raise WebAuthnChallengeInvalid()


def _timeout_ms() -> int:
    return int(tessera_settings.WEBAUTHN_CHALLENGE_TTL.total_seconds() * 1000)


# --- Registration -------------------------------------------------------------------------


def registration_options(user, *, passwordless: bool) -> dict[str, Any]:
    """Creation options for ``navigator.credentials.create()``, as JSON.

    The user's keys are excluded, so an authenticator is not registered twice. A
    passwordless key must be discoverable (stored on the authenticator, so login needs
    no username) and must verify the user, since it stands in for the password too.
    """
    rp = relying_party()
    if passwordless:
        selection = AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
    else:
        selection = AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement(
                tessera_settings.WEBAUTHN_USER_VERIFICATION
            ),
        )
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle(user),
        user_name=user.get_username(),
        user_display_name=user.get_full_name() if hasattr(user, "get_full_name") else "",
        challenge=_issue_challenge(WebAuthnChallengePurpose.REGISTER, user=user),
        timeout=_timeout_ms(),
        authenticator_selection=selection,
        exclude_credentials=_descriptors(user_passkeys(user)),
    )
    body = options_to_json_dict(options)
    # Asks the browser to say whether the key was stored on the authenticator.
    body["extensions"] = {"credProps": True}
    return body


@dataclass(frozen=True)
class Registered:
    """A new passkey, and the recovery codes made with it when it is the first factor."""

    passkey: Authenticator
    recovery_codes: list[str] | None


def register(request, user, credential: Any, *, name: str, passwordless: bool) -> Registered:
    """Verify a ``navigator.credentials.create()`` response and store the new passkey.

    The key counts as a second factor at once (the ceremony proved it works), with what
    :func:`~.factors.factor_added` does for any new factor. All in one transaction: a
    refused response leaves its challenge as it was.
    """
    try:
        with transaction.atomic():
            parsed, verified = _verify_registration(user, credential, passwordless)
            if len(verified.credential_id) > MAX_CREDENTIAL_ID_BYTES:
                raise WebAuthnResponseInvalid()
            _require_usable_public_key(verified.credential_public_key)
            credential_id = bytes_to_base64url(verified.credential_id)
            if Authenticator.objects.filter(credential_id=credential_id).exists():
                raise WebAuthnCredentialRegistered()
            now = timezone.now()
            passkey = Authenticator.objects.create(
                user=user,
                type=AuthenticatorType.WEBAUTHN,
                name=name or DEFAULT_NAME,
                created_at=now,
                confirmed_at=now,
                credential_id=credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                transports=[t.value for t in parsed.response.transports or []],
                passwordless=passwordless,
            )
            return Registered(passkey, factors.factor_added(request, passkey))
    except IntegrityError as exc:
        # The same key registered by a concurrent request since the check above.
        raise WebAuthnCredentialRegistered() from exc


def _verify_registration(user, credential: Any, passwordless: bool):
    rp = relying_party()
    with _refused_as(WebAuthnResponseInvalid):
        parsed = parse_registration_credential_json(credential)
        client_data = parse_client_data_json(parsed.response.client_data_json)
        auth_data = parse_attestation_object(parsed.response.attestation_object).auth_data
    _check_client_data(client_data, ClientDataType.WEBAUTHN_CREATE, rp)
    _consume_challenge(client_data.challenge, WebAuthnChallengePurpose.REGISTER, user=user)
    _check_authenticator_data(auth_data, rp, require_user_verification=_requires_uv(passwordless))
    if passwordless and _reports_not_discoverable(credential):
        raise WebAuthnCredentialNotDiscoverable()
    with _refused_as(WebAuthnResponseInvalid):
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=client_data.challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=_requires_uv(passwordless),
        )
    return parsed, verified


# Smaller RSA moduli than this are refused at registration, as for JWT keys.
MIN_RSA_KEY_BITS = 2048


def _require_usable_public_key(cose_key: bytes) -> None:
    """Refuse a public key no assertion could ever be verified with.

    With ``none`` attestation nothing else vouches for the key; one that is not a point on
    its curve, or an RSA modulus too small to trust, would count as a second factor that
    only ever fails.
    """
    with _refused_as(WebAuthnResponseInvalid):
        key = decoded_public_key_to_cryptography(decode_credential_public_key(cose_key))
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_KEY_BITS:
        raise WebAuthnResponseInvalid()


def _reports_not_discoverable(credential: Any) -> bool:
    """True only when the browser says (credProps) that the key was not stored."""
    if not isinstance(credential, dict):
        return False
    results = credential.get("clientExtensionResults")
    props = results.get("credProps") if isinstance(results, dict) else None
    return isinstance(props, dict) and props.get("rk") is False


# --- Assertions ---------------------------------------------------------------------------


def second_factor_options(ticket: LoginTicket) -> dict[str, Any]:
    """Request options for the second factor of the login ``ticket`` stands for."""
    return _request_options(
        WebAuthnChallengePurpose.AUTHENTICATE,
        ticket=ticket,
        allowed=user_passkeys(ticket.user),
        user_verification=tessera_settings.WEBAUTHN_USER_VERIFICATION,
    )


def verify_second_factor(ticket: LoginTicket, credential: Any) -> Assertion:
    """The passkey of ``ticket``'s user that signed this response to the ticket's challenge."""
    return _verify_assertion(
        credential,
        WebAuthnChallengePurpose.AUTHENTICATE,
        challenge_binding={"ticket": ticket},
        owner=ticket.user,
        require_user_verification=_requires_uv(passwordless=False),
    )


def reauthentication_options(user) -> dict[str, Any]:
    """Request options for a logged-in user to prove again that it is them.

    Each call stores a challenge, so calls are throttled like second-factor attempts (in
    a bucket of their own). A user without passkeys gets 404: empty options would let the
    browser offer other accounts' discoverable passkeys on a shared device.
    """
    relying_party()  # 404 passkeys_disabled first, when they are off
    throttling.hit(
        "webauthn-reauthenticate-options", str(user.pk), tessera_settings.MFA_THROTTLE_RATES["user"]
    )
    passkeys = list(user_passkeys(user))
    if not passkeys:
        raise NotFound(_("No passkey is registered for this account."))
    return _request_options(
        WebAuthnChallengePurpose.REAUTHENTICATE,
        user=user,
        allowed=passkeys,
        user_verification=tessera_settings.WEBAUTHN_USER_VERIFICATION,
    )


def verify_reauthentication(user, credential: Any) -> Assertion:
    return _verify_assertion(
        credential,
        WebAuthnChallengePurpose.REAUTHENTICATE,
        challenge_binding={"user": user},
        owner=user,
        require_user_verification=_requires_uv(passwordless=False),
    )


def passwordless_options() -> dict[str, Any]:
    """Request options for a login that names no user: the authenticator offers its keys."""
    return _request_options(
        WebAuthnChallengePurpose.PASSWORDLESS,
        allowed=Authenticator.objects.none(),
        user_verification=UserVerificationRequirement.REQUIRED.value,
    )


def verify_passwordless(credential: Any) -> Assertion:
    """The passwordless passkey that signed this response, with the user verified."""
    assertion = _verify_assertion(
        credential,
        WebAuthnChallengePurpose.PASSWORDLESS,
        challenge_binding={},
        owner=None,
        require_user_verification=True,
    )
    if not assertion.authenticator.passwordless:
        raise WebAuthnCredentialNotPasswordless()
    return assertion


# --- The second-factor method (services/mfa/methods.py) ---------------------------------

# What a verifier reports as the refusal of the ``webauthn`` field, so that a login ticket
# counts it like a wrong code.
_REFUSALS = (
    WebAuthnResponseInvalid,
    WebAuthnChallengeInvalid,
    WebAuthnOriginInvalid,
    WebAuthnRelyingPartyInvalid,
    WebAuthnUserNotVerified,
    WebAuthnSignatureInvalid,
    WebAuthnSignCountRegressed,
    WebAuthnCredentialUnknown,
)


def is_enrolled(user) -> bool:
    """Whether a login can ask ``user`` for a passkey: passkeys are on and they have one."""
    return enabled() and user_passkeys(user).exists()


def ticket_options(request, user, ticket: LoginTicket) -> dict[str, Any] | None:
    """The request options sent with ``mfa_required`` under ``options.webauthn``."""
    return second_factor_options(ticket) if enabled() else None


def verify_proof(user, credential: Any, ticket: LoginTicket | None) -> Assertion:
    """The ``webauthn`` proof of ``mfa/authenticate/`` (with the login ticket) or of
    ``reauthenticate/`` (without); a refusal is a field error of ``webauthn``."""
    if not enabled():
        raise field_error(PROOF_FIELD, _("Passkeys are not enabled on this server."), "unavailable")
    try:
        if ticket is None:
            return verify_reauthentication(user, credential)
        return verify_second_factor(ticket, credential)
    except _REFUSALS as refusal:
        raise SecondFactorRefused(
            PROOF_FIELD, str(refusal.detail), refusal.default_code
        ) from refusal


def _request_options(
    purpose: str, *, allowed, user_verification: str, user=None, ticket=None
) -> dict[str, Any]:
    rp = relying_party()
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=_issue_challenge(purpose, user=user, ticket=ticket),
        timeout=_timeout_ms(),
        allow_credentials=_descriptors(allowed),
        user_verification=UserVerificationRequirement(user_verification),
    )
    return options_to_json_dict(options)


# Atomic on its own too (a savepoint inside a caller's transaction), so that a refused
# response leaves its challenge unspent on every path, reauthenticate/ included.
@transaction.atomic
def _verify_assertion(
    credential: Any,
    purpose: str,
    *,
    challenge_binding: dict[str, Any],
    owner,
    require_user_verification: bool,
) -> Assertion:
    """Check a ``navigator.credentials.get()`` response, step by step, then let py_webauthn
    verify it whole; record the new signature count.

    ``owner`` is the user the passkey must belong to (None for a passwordless login,
    where the passkey names its user and the user handle must agree).
    """
    rp = relying_party()
    with _refused_as(WebAuthnResponseInvalid):
        parsed = parse_authentication_credential_json(credential)
        client_data = parse_client_data_json(parsed.response.client_data_json)
        auth_data = parse_authenticator_data(parsed.response.authenticator_data)
    _check_client_data(client_data, ClientDataType.WEBAUTHN_GET, rp)
    _consume_challenge(client_data.challenge, purpose, **challenge_binding)
    _check_authenticator_data(auth_data, rp, require_user_verification=require_user_verification)
    authenticator = _passkey_for(parsed, owner)
    with _refused_as(WebAuthnSignatureInvalid):
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=client_data.challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=bytes(authenticator.public_key),
            # The counter is judged below, once the signature is known to be genuine, so
            # that a forged response is reported as such and never as a cloned key.
            credential_current_sign_count=0,
            require_user_verification=require_user_verification,
        )
    _advance_sign_count(authenticator, verified.new_sign_count)
    return Assertion(authenticator=authenticator, user_verified=verified.user_verified)


def _passkey_for(parsed, owner) -> Authenticator:
    if len(parsed.raw_id) > MAX_CREDENTIAL_ID_BYTES:
        raise WebAuthnCredentialUnknown()
    if parsed.id != bytes_to_base64url(parsed.raw_id):
        raise WebAuthnResponseInvalid()
    passkeys = Authenticator.objects.select_related("user").filter(
        type=AuthenticatorType.WEBAUTHN, credential_id=parsed.id
    )
    if owner is not None:
        passkeys = passkeys.filter(user=owner)
    authenticator = passkeys.first()
    if authenticator is None or not authenticator.user.is_active:
        raise WebAuthnCredentialUnknown()
    handle = parsed.response.user_handle
    if handle is not None and handle != user_handle(authenticator.user):
        raise WebAuthnCredentialUnknown()
    return authenticator


def _advance_sign_count(authenticator: Authenticator, new_count: int) -> None:
    """Store the counter the authenticator reported, refusing one that did not increase.

    Authenticators without a counter report 0 every time; once either count is non-zero
    the new one must be greater. The comparison is in the UPDATE, so two responses with
    the same count (a key and its clone, at once) cannot both pass.
    """
    passkey = Authenticator.objects.filter(pk=authenticator.pk)
    if new_count or authenticator.sign_count:
        passkey = passkey.filter(sign_count__lt=new_count)
    now = timezone.now()
    if not passkey.update(sign_count=new_count, last_used_at=now):
        raise WebAuthnSignCountRegressed()
    authenticator.sign_count, authenticator.last_used_at = new_count, now


# --- Checks shared by both ceremonies -----------------------------------------------------


def _check_client_data(client_data: CollectedClientData, expected: ClientDataType, rp) -> None:
    if client_data.type != expected:
        raise WebAuthnResponseInvalid()
    # A ceremony run inside a frame of another site is refused like a foreign page.
    if client_data.origin not in rp.origins or client_data.cross_origin:
        raise WebAuthnOriginInvalid()


def _check_authenticator_data(
    auth_data: AuthenticatorData, rp: RelyingParty, *, require_user_verification: bool
) -> None:
    if auth_data.rp_id_hash != hashlib.sha256(rp.id.encode()).digest():
        raise WebAuthnRelyingPartyInvalid()
    if not auth_data.flags.up:
        raise WebAuthnResponseInvalid()
    if require_user_verification and not auth_data.flags.uv:
        raise WebAuthnUserNotVerified()


def _requires_uv(passwordless: bool) -> bool:
    return passwordless or tessera_settings.WEBAUTHN_USER_VERIFICATION == "required"


def _descriptors(passkeys) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(passkey.credential_id),
            transports=[AuthenticatorTransport(t) for t in passkey.transports] or None,
        )
        for passkey in passkeys
    ]


@contextmanager
def _refused_as(error: type[Exception]) -> Iterator[None]:
    try:
        yield
    except _MALFORMED as exc:
        raise error() from exc


# --- The user's passkeys ------------------------------------------------------------------


def rename_passkey(user, passkey_id: str, name: str) -> Authenticator:
    passkey = own_passkey(user, passkey_id)
    passkey.name = name
    passkey.save(update_fields=["name"])
    return passkey


def delete_passkey(request, user, passkey_id: str) -> None:
    factors.remove_factor(request, own_passkey(user, passkey_id))


def own_passkey(user, passkey_id: str) -> Authenticator:
    """One of ``user``'s passkeys; another user's id, or no such id, is 404."""
    return factors.own_factor(user, passkey_id, AuthenticatorType.WEBAUTHN)
