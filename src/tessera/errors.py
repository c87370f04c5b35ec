"""One JSON shape for every error Tessera returns.

```json
{"code": "invalid", "detail": "Invalid input.",
 "fields": {"password": [{"code": "required", "detail": "This field is required."}]}}
```

``code`` is stable and machine-readable; ``detail`` is for humans and may be translated;
``fields`` appears only on validation errors. Projects may use :func:`exception_handler`
as DRF's ``EXCEPTION_HANDLER`` to give their own views the same shape; Tessera's views use
it whatever the project's setting.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail

from .conf import tessera_settings

logger = logging.getLogger("tessera")


# Every error class Tessera raises is defined here, so docs/errors.md can be checked
# against one list. DRF's own codes (DRF_CODES) pass through unchanged.

DRF_CODES = (
    "invalid",
    "parse_error",
    "not_authenticated",
    "authentication_failed",
    "permission_denied",
    "not_found",
    "method_not_allowed",
    "unsupported_media_type",
    "throttled",
)


# 400


class InvalidResetToken(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This password reset link is invalid, expired or already used.")
    default_code = "invalid_reset_token"


class InvalidKey(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This verification link is invalid, expired or already used.")
    default_code = "invalid_key"


class InvalidNoticeLink(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This link from a new-device e-mail is not valid.")
    default_code = "invalid_notice_link"


class NoticeLinkExpired(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _(
        "This link from a new-device e-mail has expired; end the session from your list of "
        "sessions instead."
    )
    default_code = "notice_link_expired"


class NoticeLinkUsed(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This link from a new-device e-mail has already been used.")
    default_code = "notice_link_used"


class AddressTaken(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("Another account uses this e-mail address now.")
    default_code = "email_taken"


class SecondFactorRefused(exceptions.ValidationError):
    """A wrong or reused second-factor proof, reported on the field that carried it.

    Its own class so that a login ticket counts it as a failure; the body is an ordinary
    validation error (``code`` ``invalid``, the field's code ``invalid_code``,
    ``code_reused``…), since the client may simply try again.
    """

    default_detail = _("Invalid input.")

    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__({field: [ErrorDetail(message, code=code)]})


# Passkeys (WebAuthn). Each says which check of the ceremony failed; all are 400, since an
# authenticated user registering a key must not read a refusal as "logged out" (401).


class WebAuthnResponseInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This WebAuthn response is malformed or could not be verified.")
    default_code = "webauthn_invalid"


class WebAuthnChallengeInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _(
        "This WebAuthn response answers no challenge issued here for this step, or one that "
        "expired or was already used. Begin again."
    )
    default_code = "webauthn_challenge_invalid"


class WebAuthnOriginInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This WebAuthn response was made on a page whose origin is not accepted.")
    default_code = "webauthn_origin_invalid"


class WebAuthnRelyingPartyInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This WebAuthn response was made for another relying party id.")
    default_code = "webauthn_rp_id_invalid"


class WebAuthnUserNotVerified(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The authenticator did not verify the user (PIN or biometrics).")
    default_code = "webauthn_user_verification_required"


class WebAuthnSignatureInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The passkey's signature does not verify.")
    default_code = "webauthn_signature_invalid"


class WebAuthnSignCountRegressed(exceptions.APIException):
    """The authenticator's counter did not move forward: a replay, or a cloned key."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This passkey's signature counter did not increase; it may be cloned.")
    default_code = "webauthn_sign_count_regressed"


class WebAuthnCredentialUnknown(exceptions.APIException):
    """No such passkey, or not one of the account's: the two read the same."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This passkey is not registered for this account.")
    default_code = "webauthn_credential_unknown"


class WebAuthnCredentialNotPasswordless(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _(
        "This passkey is registered as a second factor only; log in with your password."
    )
    default_code = "webauthn_credential_not_passwordless"


class WebAuthnCredentialNotDiscoverable(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _(
        "The authenticator did not store this passkey, so it cannot log in without a "
        "password. Register it with passwordless off."
    )
    default_code = "webauthn_credential_not_discoverable"


# Social sign-in (docs/social.md). The redirect flow's callback hands these codes to the
# front end's social_error page instead of answering them.


class SocialStateInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _(
        "This sign-in answers no sign-in started in this browser, or one that expired or "
        "was already finished. Start again."
    )
    default_code = "social_state_invalid"


class SocialProviderRefused(exceptions.APIException):
    """The provider answered with an error, or refused the code (a wrong PKCE verifier)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The provider refused this sign-in.")
    default_code = "social_provider_refused"


class SocialCodeInvalid(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This sign-in code is invalid, expired or already used. Sign in again.")
    default_code = "social_code_invalid"


# 401


class InvalidCredentials(exceptions.AuthenticationFailed):
    default_detail = _("Unable to log in with the provided credentials.")
    default_code = "invalid_credentials"


class InvalidHeader(exceptions.AuthenticationFailed):
    """A malformed Authorization header; the detail says what is wrong with it."""

    default_detail = _("Invalid Authorization header.")
    default_code = "invalid_header"


class InvalidToken(exceptions.AuthenticationFailed):
    default_detail = _("Invalid token.")
    default_code = "invalid_token"


class UnknownExternalIdentity(exceptions.AuthenticationFailed):
    default_detail = _("This identity of the token's issuer is not linked to a user.")
    default_code = "unknown_external_identity"


class WrongTokenType(exceptions.AuthenticationFailed):
    default_detail = _("Token has the wrong type.")
    default_code = "wrong_token_type"


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = _("Token has expired.")
    default_code = "token_expired"


class TokenRevoked(exceptions.AuthenticationFailed):
    default_detail = _("Token has been revoked.")
    default_code = "token_revoked"


class TokenReused(exceptions.AuthenticationFailed):
    default_detail = _("This refresh token was already used; the session has been revoked.")
    default_code = "token_reused"


class UserInactive(exceptions.AuthenticationFailed):
    default_detail = _("User inactive or deleted.")
    default_code = "user_inactive"


class MFARequired(exceptions.AuthenticationFailed):
    """The password was right and the user has a second factor: the login waits for it.

    The body carries the login ticket to send to ``mfa/authenticate/``, the methods the
    user can answer with, and per method what the client needs to answer it.
    """

    default_detail = _("Enter your second factor to finish logging in.")
    default_code = "mfa_required"

    def __init__(self, ticket: str, methods: list[str], options: dict[str, Any]) -> None:
        super().__init__()
        self.body_fields = {"ticket": ticket, "methods": methods, "options": options}


class InvalidTicket(exceptions.AuthenticationFailed):
    default_detail = _("This login ticket is invalid, expired or used up; log in again.")
    default_code = "invalid_ticket"


class SocialTokenInvalid(exceptions.AuthenticationFailed):
    """The provider's ID token (or access token) does not verify: signature, unknown key,
    issuer, audience or a missing claim; the detail says which."""

    default_detail = _("The provider's token is invalid.")
    default_code = "social_token_invalid"


class SocialTokenExpired(exceptions.AuthenticationFailed):
    default_detail = _("The provider's token has expired. Sign in again.")
    default_code = "social_token_expired"


class SocialNonceMismatch(exceptions.AuthenticationFailed):
    default_detail = _("The provider's ID token was not issued for this sign-in (nonce).")
    default_code = "social_nonce_mismatch"


# 403


class CsrfFailed(exceptions.PermissionDenied):
    default_detail = _("CSRF Failed.")
    default_code = "csrf_failed"


class HttpsRequired(exceptions.PermissionDenied):
    default_detail = _("HTTP Basic credentials are accepted over HTTPS only.")
    default_code = "https_required"


class SessionLimitReached(exceptions.PermissionDenied):
    default_detail = _("This account has reached its limit of active sessions.")
    default_code = "session_limit_reached"


class EmailNotVerified(exceptions.PermissionDenied):
    """The password was right, but the account's address is not verified yet."""

    default_detail = _("Verify your e-mail address before logging in.")
    default_code = "email_not_verified"


class FreshLoginRequired(exceptions.PermissionDenied):
    default_detail = _(
        "Creating a personal access token needs a recent login: send your password as `password`."
    )
    default_code = "fresh_login_required"


class PersonalTokenNotAllowed(exceptions.PermissionDenied):
    default_detail = _("A personal access token cannot be used for this action; log in instead.")
    default_code = "personal_access_token_not_allowed"


class PersonalTokenLimitReached(exceptions.PermissionDenied):
    default_detail = _("This account has reached its limit of personal access tokens.")
    default_code = "personal_token_limit_reached"


class MFANotSupported(exceptions.PermissionDenied):
    default_detail = _(
        "This account uses a second factor, which this way of signing in cannot ask for. "
        "Log in, or use a personal access token."
    )
    default_code = "mfa_not_supported"


class MFAEnrolmentRequired(exceptions.PermissionDenied):
    default_detail = _("Set up a second factor before doing anything else with this account.")
    default_code = "mfa_enrolment_required"


class SocialSignupClosed(exceptions.PermissionDenied):
    """No account is linked to this identity and none may be opened for it."""

    default_detail = _("No account is linked to this identity, and none can be opened for it.")
    default_code = "social_signup_closed"


class SocialBrowserMismatch(exceptions.PermissionDenied):
    """A live one-time code presented by a browser other than the one that started the
    sign-in (no binding cookie, or another one's)."""

    default_detail = _(
        "This sign-in was started in another browser. Finish it there, or sign in again here."
    )
    default_code = "social_browser_mismatch"


# The permission classes' refusals (tessera.permissions). DRF raises them as
# PermissionDenied from a permission's ``message`` and ``code``, taken from these.


class RoleRequired(exceptions.PermissionDenied):
    default_detail = _("You do not have the role this action needs.")
    default_code = "role_required"


class AdminRequired(exceptions.PermissionDenied):
    default_detail = _("This action is for administrators.")
    default_code = "admin_required"


class ScopeRequired(exceptions.PermissionDenied):
    default_detail = _("This credential lacks a scope this action needs.")
    default_code = "scope_required"


class NotOwner(exceptions.PermissionDenied):
    default_detail = _("You do not own this object.")
    default_code = "not_owner"


class ReauthenticationRequired(exceptions.PermissionDenied):
    default_detail = _("Confirm it is you (reauthenticate/) before doing this.")
    default_code = "reauthentication_required"


class SecondFactorRequired(exceptions.PermissionDenied):
    default_detail = _("This action needs a session signed in with a second factor.")
    default_code = "mfa_required"


# 404


class PasskeysDisabled(exceptions.NotFound):
    default_detail = _("Passkeys are not enabled on this server.")
    default_code = "passkeys_disabled"


class SocialProviderUnknown(exceptions.NotFound):
    default_detail = _("No sign-in provider of this name is configured.")
    default_code = "social_provider_unknown"


# 429


class LockedOut(exceptions.Throttled):
    """Too many failed logins for this account, address or device: wait ``Retry-After``.

    Refused before any password is checked, whatever the password."""

    default_detail = _("Too many failed login attempts. Try again later.")
    default_code = "locked_out"

    def __init__(self, wait: int, scope: str) -> None:
        super().__init__(wait=wait)
        self.scope = scope


# 413, 503


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


class ServiceUnavailable(exceptions.APIException):
    """A backing service (database, cache) failed: fail closed, ask the client to retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The service is temporarily unavailable. Try again shortly.")
    default_code = "service_unavailable"

    def __init__(self, detail: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, code)
        self.wait = tessera_settings.RETRY_AFTER


class IssuerUnavailable(ServiceUnavailable):
    """No keys of a trusted issuer are held and the issuer cannot be reached."""

    default_detail = _("The token's issuer cannot be reached. Try again shortly.")
    default_code = "issuer_unavailable"


class SocialProviderUnavailable(ServiceUnavailable):
    """The provider's discovery, keys, token endpoint or user API cannot be reached."""

    default_detail = _("The sign-in provider cannot be reached. Try again shortly.")
    default_code = "social_provider_unavailable"


def field_error(field: str, message: str, code: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [ErrorDetail(message, code=code)]})


# 409


class Conflict(exceptions.APIException):
    """A write lost a race for a unique value: the database is up, so never a 503."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with data stored meanwhile. Try again.")
    default_code = "conflict"


class TOTPAlreadyEnabled(Conflict):
    default_detail = _(
        "An authenticator app is already set up; remove it before setting up another."
    )
    default_code = "totp_already_enabled"


class MFANotEnabled(Conflict):
    default_detail = _("Recovery codes need a second factor; set one up first.")
    default_code = "mfa_not_enabled"


class WebAuthnCredentialRegistered(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("This passkey is already registered.")
    default_code = "webauthn_credential_registered"


class SocialIdentityTaken(Conflict):
    default_detail = _("This identity of the provider is linked to another account.")
    default_code = "social_identity_taken"


class SocialLastLoginMethod(Conflict):
    default_detail = _(
        "This is the account's last way to log in: set a password (or link another "
        "identity) before unlinking it."
    )
    default_code = "social_last_login_method"


def tessera_error_classes() -> list[type[exceptions.APIException]]:
    """Every error class this module defines (docs/errors.md lists each code)."""
    return [
        value
        for value in globals().values()
        if isinstance(value, type)
        and issubclass(value, exceptions.APIException)
        and value.__module__ == __name__
    ]


def _field_errors(details: Any) -> dict[str, list[dict[str, str]]]:
    """Flatten DRF's nested error details into ``{field: [{code, detail}]}``.

    Nested serializers give dotted paths (``address.city``) and list items their index
    (``items.0``), so a client can map every message to one input.
    """
    flat: dict[str, list[dict[str, str]]] = {}

    def walk(path: str, node: Any) -> None:
        if isinstance(node, dict) and set(node) == {"message", "code"}:
            flat.setdefault(path, []).append(
                {"code": str(node["code"]), "detail": str(node["message"])}
            )
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(f"{path}.{key}" if path else str(key), value)
        elif isinstance(node, list):
            leaf_list = all(
                isinstance(item, dict) and set(item) == {"message", "code"} for item in node
            )
            for index, item in enumerate(node):
                walk(path if leaf_list else f"{path}.{index}", item)

    if isinstance(details, list):
        details = {"non_field_errors": details}
    walk("", details)
    return flat


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return {
            "code": "invalid",
            "detail": "Invalid input.",
            "fields": _field_errors(exc.get_full_details()),
        }
    codes = exc.get_codes()
    detail = exc.detail
    if isinstance(detail, dict | list):
        # An APIException raised with a structured detail: keep its first message.
        full = _field_errors(exc.get_full_details())
        first = next(iter(full.values()))[0]
        return {"code": first["code"], "detail": first["detail"]}
    return {
        "code": codes if isinstance(codes, str) else exc.default_code,
        "detail": str(detail),
        # What an error tells the client besides its code (MFARequired's login ticket).
        **getattr(exc, "body_fields", {}),
    }


def exception_handler(exc: Exception, context: dict[str, Any]):
    # Imported here: rest_framework.views imports the project's authentication classes,
    # which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    # IntegrityError is a DatabaseError, but it proves the database answered.
    if isinstance(exc, IntegrityError):
        logger.warning("Integrity error while serving a request; answering 409.", exc_info=exc)
        exc = Conflict()
    elif isinstance(exc, DatabaseError):
        logger.exception("Database error while serving a request; answering 503.")
        exc = ServiceUnavailable()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = error_body(exc)
    return response
