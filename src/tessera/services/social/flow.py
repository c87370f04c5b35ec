"""The redirect sign-in and the native one, ending in the one login pipeline.

Redirect (a web page):

1. :func:`begin` stores a :class:`~tessera.models.SocialLogin` under the digest of a
   random ``state`` and answers the provider's URL. The PKCE verifier and the OpenID
   ``nonce`` are HMACs of the state under SIGNING_KEY, so neither is stored anywhere.
   A second random value goes to the browser in a cookie, and only its digest to the
   row: the callback and the exchange must come from the browser that started the
   sign-in, so another site cannot finish its own sign-in in a victim's browser (login
   CSRF), and a code read from a history or a log is of no use elsewhere.
2. :func:`finish` (the provider's redirect back) finds the live state of this browser,
   trades the code with the verifier, verifies the ID token (or reads GitHub's user
   API), then spends the state (one conditional UPDATE: of two callbacks, one wins) and
   names the account. The front end gets a one-time code, valid SOCIAL_CODE_TTL.
   The state is spent only once the provider answered, so a provider that was down
   can be tried again.
3. :func:`exchange` spends that code if the browser's binding matches (one conditional
   UPDATE) and calls :func:`~tessera.services.login.complete_login` for the credential
   chosen at step 1.

Native (a mobile SDK): :func:`native_login` verifies the ID token the app got (its
audience one of the app's client ids, its nonce the one the app sent) or, for GitHub,
asks GitHub whether the access token is this app's, and enters the same pipeline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

from django.core.cache import caches
from django.db import transaction
from django.utils import timezone

from ...conf import tessera_settings
from ...errors import (
    MFARequired,
    ServiceUnavailable,
    SocialBrowserMismatch,
    SocialCodeInvalid,
    SocialIdentityTaken,
    SocialNonceMismatch,
    SocialProviderRefused,
    SocialProviderUnavailable,
    SocialProviderUnknown,
    SocialSignupClosed,
    SocialStateInvalid,
    SocialTokenExpired,
    SocialTokenInvalid,
    UserInactive,
)
from ...models import SocialLogin
from .. import login, throttling
from ..client import client_key
from ..emails import frontend_url
from . import accounts, providers

LINK = "link"
# The ``mode`` of authorize/ and token/ -> the credential the login ends in.
CREDENTIAL_OF_MODE = {
    "token": login.TOKEN,
    "jwt": login.JWT,
    "session": login.BROWSER,
}
MODES = (*CREDENTIAL_OF_MODE, LINK)
MAX_SECRET_LENGTH = 128
USED_ID_TOKEN_PREFIX = "tessera:social-id-token:"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _derived(purpose: str, state: str) -> str:
    """A value only this server can compute from ``state``: 43 URL-safe characters, as
    PKCE wants of a verifier (RFC 7636 4.1)."""
    mac = hmac.new(
        tessera_settings.signing_key, f"tessera.social.{purpose}:{state}".encode(), "sha256"
    )
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def verifier_of(state: str) -> str:
    return _derived("pkce", state)


def nonce_of(state: str) -> str:
    return _derived("nonce", state)


def binding_key(state_digest: str) -> str:
    """What tells one sign-in's browser binding from another's (two tabs signing in at
    once each keep theirs): a prefix of the state's digest, which the callback (from the
    state) and the exchange (from the row) both know."""
    return state_digest[:16]


def binding_key_of_state(state) -> str | None:
    if not (isinstance(state, str) and 0 < len(state) <= MAX_SECRET_LENGTH):
        return None
    return binding_key(_digest(state))


@dataclass(frozen=True)
class Started:
    """The provider's URL to redirect to, and the value to bind to the browser under
    ``binding_key``."""

    url: str
    browser_binding: str
    binding_key: str


@dataclass(frozen=True)
class Finished:
    """The front-end URL to redirect to; ``exchange_follows`` when the browser binding is
    still needed (at exchange/, or for a retry of the callback)."""

    url: str
    exchange_follows: bool


@dataclass(frozen=True)
class Pending:
    """A live one-time code's sign-in: its mode and its browser binding's key."""

    mode: str
    binding_key: str


def _count_attempt(request) -> None:
    rate = tessera_settings.LOGIN_THROTTLE_RATES.get("ip")
    throttling.hit("login-ip", client_key(request), rate)


def begin(
    request, name: str, mode: str, redirect_uri: str, *, device_name: str = "", link_user=None
) -> Started:
    """Start a redirect sign-in (or, ``mode`` "link", the linking of an identity to
    ``link_user``). Counted against the client's rate in its own bucket: every start
    stores a row."""
    rate = tessera_settings.LOGIN_THROTTLE_RATES.get("ip")
    throttling.hit("social-authorize-ip", client_key(request), rate)
    provider = providers.get(name)
    redirect_uri = provider.redirect_uri or redirect_uri
    state, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    url = providers.authorization_url(
        provider, redirect_uri, state=state, verifier=verifier_of(state), nonce=nonce_of(state)
    )
    now = timezone.now()
    SocialLogin.objects.create(
        provider=name,
        mode=mode,
        device_name=device_name,
        state_digest=_digest(state),
        browser_digest=_digest(binding),
        link_user=link_user,
        created_at=now,
        expires_at=now + tessera_settings.SOCIAL_STATE_TTL,
    )
    return Started(url, binding, binding_key(_digest(state)))


def finish(request, name: str, params, browser_binding: str | None, redirect_uri: str) -> Finished:
    """Where the provider's redirect back leads: ``social_callback`` with a one-time
    code, ``social_linked``, or ``social_error`` with the refusal's code.

    A provider that cannot be reached leaves the state unspent: the same callback may be
    tried again (``social_error`` with ``social_provider_unavailable``).
    """
    try:
        return _finish(request, name, params, browser_binding, redirect_uri)
    except SocialProviderUnavailable as exc:
        return Finished(frontend_url("social_error", error=exc.default_code), True)
    except (
        SocialStateInvalid,
        SocialProviderRefused,
        SocialTokenInvalid,
        SocialTokenExpired,
        SocialNonceMismatch,
        SocialProviderUnknown,
        SocialIdentityTaken,
        SocialSignupClosed,
        UserInactive,
    ) as exc:
        return Finished(frontend_url("social_error", error=exc.default_code), False)


def _live_state(name: str, state, browser_binding: str | None) -> SocialLogin:
    if not (isinstance(state, str) and 0 < len(state) <= MAX_SECRET_LENGTH):
        raise SocialStateInvalid()
    row = (
        SocialLogin.objects.select_related("link_user")
        .filter(
            state_digest=_digest(state),
            provider=name,
            state_used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )
    binding = browser_binding if isinstance(browser_binding, str) else ""
    if row is None or not hmac.compare_digest(_digest(binding), row.browser_digest):
        raise SocialStateInvalid()
    return row


def _finish(request, name: str, params, browser_binding: str | None, redirect_uri: str) -> Finished:
    state = params.get("state")
    row = _live_state(name, state, browser_binding)
    provider = providers.get(name)
    code = params.get("code")
    if "error" in params or not (isinstance(code, str) and 0 < len(code) <= 2048):
        _spend(row)
        raise SocialProviderRefused()
    identity = providers.identity_from_code(
        provider,
        code,
        redirect_uri=provider.redirect_uri or redirect_uri,
        verifier=verifier_of(state),
        nonce=nonce_of(state),
    )
    _spend(row)
    if row.mode == LINK:
        accounts.link(request, row.link_user, provider, identity)
        return Finished(frontend_url("social_linked", provider=name), False)
    user = accounts.user_for(request, provider, identity)
    one_time_code = secrets.token_urlsafe(32)
    SocialLogin.objects.filter(pk=row.pk).update(
        user=user,
        amr=providers.login_amr(provider, identity),
        code_digest=_digest(one_time_code),
        code_expires_at=timezone.now() + tessera_settings.SOCIAL_CODE_TTL,
    )
    return Finished(frontend_url("social_callback", code=one_time_code), True)


def _spend(row: SocialLogin) -> None:
    spent = SocialLogin.objects.filter(pk=row.pk, state_used_at__isnull=True).update(
        state_used_at=timezone.now()
    )
    if not spent:
        raise SocialStateInvalid()


def _live_codes(code: str):
    return SocialLogin.objects.filter(
        code_digest=_digest(code), code_used_at__isnull=True, code_expires_at__gt=timezone.now()
    )


def pending(code) -> Pending | None:
    """The sign-in ``code`` finishes, if it names a live one (to know before spending it
    whether the request must carry a CSRF token, and which binding to read)."""
    if not (isinstance(code, str) and 0 < len(code) <= MAX_SECRET_LENGTH):
        return None
    row = _live_codes(code).values_list("mode", "state_digest").first()
    return None if row is None else Pending(row[0], binding_key(row[1]))


def exchange(request, code: str, browser_binding: str | None):
    """Spend the callback's one-time code and log in as the sign-in chose.

    Only the browser that started the sign-in may: ``browser_binding`` is the value of
    its cookie, compared in the same conditional UPDATE that spends the code. Another
    browser is refused (``social_browser_mismatch``) and leaves the code as it was.

    The code's use and the new session commit together: a login refused at its last
    step (a session limit) leaves the code usable. A login that must show a second
    factor keeps the code spent and its ticket, and answers 401 ``mfa_required``.
    Returns (credential, what complete_login returned).
    """
    _count_attempt(request)
    if not (isinstance(code, str) and 0 < len(code) <= MAX_SECRET_LENGTH):
        raise SocialCodeInvalid()
    second_factor: MFARequired | None = None
    binding = browser_binding if isinstance(browser_binding, str) else ""
    with transaction.atomic():
        spent = (
            _live_codes(code)
            .filter(browser_digest=_digest(binding))
            .update(code_used_at=timezone.now())
        )
        if not spent:
            if _live_codes(code).exists():
                raise SocialBrowserMismatch()
            raise SocialCodeInvalid()
        row = SocialLogin.objects.select_related("user").get(code_digest=_digest(code))
        if not row.user.is_active:
            raise UserInactive()
        credential = CREDENTIAL_OF_MODE[row.mode]
        intent = login.LoginIntent(credential, row.device_name, provider=row.provider)
        try:
            result = login.complete_login(request, row.user, intent, amr=row.amr)
        except MFARequired as exc:
            second_factor = exc
    if second_factor is not None:
        raise second_factor
    return credential, result


def native_identity(name: str, *, id_token=None, access_token=None, nonce=None):
    """The provider and the identity a token from a native SDK asserts."""
    provider = providers.get(name)
    if provider.is_oidc:
        if not isinstance(id_token, str):
            raise SocialTokenInvalid("Send the provider's id_token.")
        identity = providers.verify_id_token(
            provider, id_token, audiences=provider.client_ids, nonce=nonce
        )
        _spend_id_token(id_token, identity.expires_at)
        return provider, identity
    if not isinstance(access_token, str) or not 0 < len(access_token) <= 1024:
        raise SocialTokenInvalid("Send the provider's access_token.")
    return provider, providers.github_identity(provider, access_token, check_app=True)


def _spend_id_token(id_token: str, expires_at: float) -> None:
    """A native ID token serves once: its digest is remembered in Tessera's cache until
    it expires, by one atomic add, so a token copied from a device (or a log) cannot
    sign in again. A nonce the app chose alone cannot do that: the copy carries it too.
    Without the cache nothing is accepted (503)."""
    leeway = tessera_settings.JWT_LEEWAY.total_seconds()
    lifetime = max(1, math.ceil(expires_at + leeway - timezone.now().timestamp()) + 1)
    try:
        fresh = caches[tessera_settings.CACHE_ALIAS].add(
            USED_ID_TOKEN_PREFIX + _digest(id_token), 1, lifetime
        )
    except Exception as exc:  # noqa: BLE001 - any cache failure: fail closed
        raise ServiceUnavailable() from exc
    if not fresh:
        raise SocialTokenInvalid("This ID token has signed in already.")


def native_login(request, name: str, mode: str, device_name: str, **token):
    """Log in with a token a native SDK got from the provider."""
    _count_attempt(request)
    provider, identity = native_identity(name, **token)
    user = accounts.user_for(request, provider, identity)
    intent = login.LoginIntent(CREDENTIAL_OF_MODE[mode], device_name, provider=name)
    return login.complete_login(request, user, intent, amr=providers.login_amr(provider, identity))


def native_link(request, user, name: str, **token):
    provider, identity = native_identity(name, **token)
    return accounts.link(request, user, provider, identity)
