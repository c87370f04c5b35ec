"""The configured sign-in providers (``SOCIAL_PROVIDERS``) and how to talk to them.

Authlib builds the authorization URL (``state``, ``nonce``, PKCE S256) and the token
request; its HTTP goes through :func:`tessera.services.issuer_keys.request_json`, so
every call to a provider has the same deadline (EXTERNAL_JWKS_TIMEOUT), size cap and no
redirects as the key fetches. ID tokens are verified by
:func:`tessera.tokens.external.decode` with the keys :mod:`~tessera.services.issuer_keys`
holds, against the provider's issuer, the app's client ids and pinned algorithms.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.client import OAuth2Client
from django.core.signals import setting_changed
from django.db import DatabaseError

from ...conf import tessera_settings
from ...errors import (
    ServiceUnavailable,
    SocialNonceMismatch,
    SocialProviderRefused,
    SocialProviderUnavailable,
    SocialProviderUnknown,
    SocialTokenExpired,
    SocialTokenInvalid,
)
from ...models import SocialApp
from ...tokens import external
from ...tokens.jwt import InvalidJWT
from .. import issuer_keys
from ..issuer_keys import Deadline, IssuerUnreachable, acceptable_url, request_json
from ..mfa import encryption

OIDC, GOOGLE, MICROSOFT, GITHUB = "oidc", "google", "microsoft", "github"
TYPES = (OIDC, GOOGLE, MICROSOFT, GITHUB)
GOOGLE_ISSUER = "https://accounts.google.com"
# Google's ID tokens may name their issuer without the scheme (its documentation says so).
GOOGLE_ISSUER_ALIASES = ("accounts.google.com",)
MICROSOFT_ISSUER = "https://login.microsoftonline.com/{tenant}/v2.0"
# Personal Microsoft accounts: their ID tokens name this tenant id as issuer.
MICROSOFT_CONSUMERS = ("consumers", "9188040d-6c67-4c5b-b112-36a304b66dad")
GITHUB_URLS = {
    "authorize_url": "https://github.com/login/oauth/authorize",
    "token_url": "https://github.com/login/oauth/access_token",
    "api_url": "https://api.github.com",
}
DEFAULT_SCOPES = {
    OIDC: "openid email profile",
    GOOGLE: "openid email profile",
    MICROSOFT: "openid email profile",
    GITHUB: "read:user user:email",
}
DEFAULT_ALGORITHMS = ("RS256",)
# The amr values (RFC 8176) of each kind of factor. One value names one factor, however
# strong: a passwordless one-time code or face scan is a single factor; "mfa" says the
# provider checked several.
FACTOR_CLASSES = {
    "knowledge": frozenset({"pwd", "pin", "kba"}),
    "possession": frozenset({"otp", "sms", "tel", "hwk", "swk", "sc"}),
    "inherence": frozenset({"face", "fpt", "iris", "retina", "vbm"}),
}


@dataclass(frozen=True)
class Provider:
    """One SOCIAL_PROVIDERS entry, with its client credentials resolved."""

    name: str
    type: str
    client_id: str
    client_secret: str
    scope: str
    algorithms: tuple[str, ...]
    native_client_ids: tuple[str, ...]
    trust_mfa: bool
    link_verified_email: bool
    signup: bool
    redirect_uri: str | None
    issuer: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    endpoint_hosts: tuple[str, ...] | None = None

    @property
    def client_ids(self) -> tuple[str, ...]:
        """This app's client ids at the provider: the web app's and the native apps'."""
        return (self.client_id, *self.native_client_ids)

    @property
    def is_oidc(self) -> bool:
        return self.type != GITHUB

    @property
    def identity_issuer(self) -> str:
        """The ``issuer`` of this provider's linked identities: the OpenID issuer, or for
        GitHub the origin of its sign-in page (so GitHub Enterprise is its own)."""
        if self.issuer is not None:
            return self.issuer
        parts = urlsplit(self.urls["authorize_url"])
        return f"{parts.scheme}://{parts.netloc}"

    def accepted_issuers(self) -> tuple[str, ...]:
        if self.type == GOOGLE and self.issuer == GOOGLE_ISSUER:
            return (self.issuer, *GOOGLE_ISSUER_ALIASES)
        return (self.issuer,) if self.issuer else ()


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: ``issuer`` + ``subject`` name them for good."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    amr: tuple[str, ...] = ()
    # When the ID token that asserted it expires (None: no ID token, GitHub's API).
    expires_at: float | None = None


def get(name: str) -> Provider:
    """The provider ``name``, or 404 ``social_provider_unknown``."""
    entry = tessera_settings.SOCIAL_PROVIDERS.get(name) if isinstance(name, str) else None
    if not isinstance(entry, dict) or entry.get("type") not in TYPES:
        raise SocialProviderUnknown()
    client_id, client_secret = entry.get("client_id"), entry.get("client_secret", "")
    if not client_id:
        client_id, client_secret = _app_credentials(name)
    kind = entry["type"]
    issuer = entry.get("issuer")
    if issuer is None and kind == GOOGLE:
        issuer = GOOGLE_ISSUER
    elif issuer is None and kind == MICROSOFT:
        tenant = entry.get("tenant", "")
        tenant = MICROSOFT_CONSUMERS[1] if tenant == MICROSOFT_CONSUMERS[0] else tenant
        issuer = MICROSOFT_ISSUER.format(tenant=tenant)
    return Provider(
        name=name,
        type=kind,
        client_id=client_id,
        client_secret=client_secret or "",
        scope=entry.get("scope", DEFAULT_SCOPES[kind]),
        algorithms=tuple(entry.get("algorithms", DEFAULT_ALGORITHMS)),
        native_client_ids=tuple(entry.get("native_client_ids", ())),
        trust_mfa=entry.get("trust_mfa", False),
        link_verified_email=entry.get("link_verified_email", False),
        signup=entry.get("signup", True),
        redirect_uri=entry.get("redirect_uri"),
        issuer=issuer if kind != GITHUB else None,
        urls={key: entry.get(key, url) for key, url in GITHUB_URLS.items()}
        if kind == GITHUB
        else {},
        endpoint_hosts=tuple(entry["endpoint_hosts"]) if "endpoint_hosts" in entry else None,
    )


def configured_providers() -> list[str]:
    """The names of the SOCIAL_PROVIDERS entries a user can sign in with."""
    return [
        name
        for name, entry in tessera_settings.SOCIAL_PROVIDERS.items()
        if isinstance(entry, dict) and entry.get("type") in TYPES
    ]


def _app_credentials(name: str) -> tuple[str, str]:
    try:
        app = SocialApp.objects.filter(provider=name).first()
    except DatabaseError as exc:
        raise ServiceUnavailable() from exc
    if app is None:
        raise SocialProviderUnknown()
    return app.client_id, encryption.decrypt(app.secret) if app.secret else ""


# --- Endpoints -------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    jwks_uri: str | None = None


ENDPOINT_NAMES = ("authorization_endpoint", "token_endpoint", "jwks_uri")


def endpoints(provider: Provider) -> Endpoints:
    """Where to send the user and the code; SocialProviderUnavailable if unknown yet."""
    if not provider.is_oidc:
        return Endpoints(provider.urls["authorize_url"], provider.urls["token_url"])
    try:
        document = discovery(provider.issuer).document()
    except IssuerUnreachable as exc:
        raise SocialProviderUnavailable() from exc
    if provider.endpoint_hosts is not None:
        allowed = {urlsplit(provider.issuer).hostname, *provider.endpoint_hosts}
        if any(urlsplit(document[name]).hostname not in allowed for name in ENDPOINT_NAMES):
            issuer_keys.logger.warning(
                "The discovery document of %s names an endpoint off the hosts of entry %s.",
                provider.issuer,
                provider.name,
            )
            raise SocialProviderUnavailable()
    return Endpoints(
        document["authorization_endpoint"], document["token_endpoint"], document["jwks_uri"]
    )


@dataclass
class IssuerDiscovery(issuer_keys.HeldDocument):
    """One issuer's discovery document as this process holds it, refreshed after
    EXTERNAL_JWKS_MAX_AGE as its keys are: by one thread while the others go on with
    the document held, none before ``retry_at`` after a failure, and an old document
    kept while the issuer cannot be reached."""

    issuer: str
    held: dict[str, Any] | None = None
    fetched_at: float = float("-inf")
    retry_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def document(self) -> dict[str, Any]:
        """The document, or IssuerUnreachable while none could be fetched."""
        moment = issuer_keys.now()
        if (self.held is None or self._stale(moment)) and moment >= self.retry_at:
            self._refresh_or_wait(self._refresh)
        if self.held is None:
            raise IssuerUnreachable(f"No discovery document of {self.issuer} could be fetched.")
        return self.held

    def holds_something(self) -> bool:
        return self.held is not None

    def _refresh(self) -> None:
        moment = issuer_keys.now()
        if (self.held is not None and not self._stale(moment)) or moment < self.retry_at:
            return  # another thread refreshed, or failed, while this one waited
        try:
            with Deadline(issuer_keys.fetch_timeout()) as deadline:
                document = issuer_keys.fetch_json(
                    self.issuer.rstrip("/") + issuer_keys.DISCOVERY_PATH, deadline
                )
            _check_discovery(self.issuer, document)
        except IssuerUnreachable as exc:
            self._failed("Discovery", exc)
            return
        self.held, self.fetched_at = document, issuer_keys.now()


def _check_discovery(issuer: str, document: Any) -> None:
    """The document must be the issuer's, its endpoints https; plain http, and any
    address of this machine, only for an issuer that is itself on this machine (a
    development provider): a provider's document must not send the client secret, or
    a request, into the host Tessera runs on."""
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise IssuerUnreachable(f"The discovery document of {issuer} is not its own.")
    local_issuer = issuer_keys.is_loopback(issuer)
    for name in ENDPOINT_NAMES:
        url = document.get(name)
        if not acceptable_url(url) or (issuer_keys.is_loopback(url) and not local_issuer):
            raise IssuerUnreachable(f"The discovery document of {issuer} has no usable {name}.")


_discoveries: dict[str, IssuerDiscovery] = {}
_discoveries_lock = threading.Lock()


def discovery(issuer: str) -> IssuerDiscovery:
    """This process's discovery document of ``issuer``."""
    held = _discoveries.get(issuer)
    if held is None:
        with _discoveries_lock:
            held = _discoveries.setdefault(issuer, IssuerDiscovery(issuer))
    return held


def forget_discovery() -> None:
    _discoveries.clear()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "TESSERA":
        forget_discovery()


setting_changed.connect(_settings_changed)
os.register_at_fork(after_in_child=forget_discovery)


# --- Authlib over Tessera's bounded HTTP ------------------------------------------------


class _Response:
    """What Authlib reads of a ``requests`` response."""

    def __init__(self, status: int, document: Any) -> None:
        self.status_code = status
        self.document = document

    def json(self) -> Any:
        if self.document is None:
            raise ValueError("The answer is not JSON.")
        return self.document

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise SocialProviderRefused()


class _Transport:
    """The ``session`` Authlib's OAuth2Client posts through: one bounded request each."""

    def post(self, url: str, data=None, headers=None, auth=None, **kwargs: Any) -> _Response:
        body = urlencode(data or {})
        headers = dict(headers or {})
        if auth is not None:
            url, headers, body = auth.prepare("POST", url, headers, body)
        return _call(url, method="POST", body=body.encode(), headers=headers)


def _call(url: str, **request: Any) -> _Response:
    try:
        with Deadline(issuer_keys.fetch_timeout()) as deadline:
            return _Response(*request_json(url, deadline, **request))
    except IssuerUnreachable as exc:
        raise SocialProviderUnavailable() from exc


def oauth_client(provider: Provider, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        _Transport(),
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method="client_secret_post"
        if provider.type == GITHUB
        else "client_secret_basic"
        if provider.client_secret
        else "none",
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )


def authorization_url(
    provider: Provider, redirect_uri: str, *, state: str, verifier: str, nonce: str
) -> str:
    """The provider's sign-in page for this sign-in (Authlib adds the PKCE challenge)."""
    extra = {"nonce": nonce} if provider.is_oidc else {}
    url, _ = oauth_client(provider, redirect_uri).create_authorization_url(
        endpoints(provider).authorization, state=state, code_verifier=verifier, **extra
    )
    return url


def identity_from_code(
    provider: Provider, code: str, *, redirect_uri: str, verifier: str, nonce: str
) -> Identity:
    """Trade the provider's code (with the PKCE verifier) and read who signed in."""
    client = oauth_client(provider, redirect_uri)
    try:
        token = client.fetch_token(
            endpoints(provider).token,
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
        )
    except (OAuth2Error, ValueError) as exc:
        raise SocialProviderRefused() from exc
    if not provider.is_oidc:
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise SocialProviderRefused()
        return github_identity(provider, access_token, check_app=False)
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SocialProviderRefused("The provider's answer has no ID token.")
    return verify_id_token(provider, id_token, audiences=(provider.client_id,), nonce=nonce)


def verify_id_token(
    provider: Provider, id_token: str, *, audiences: tuple[str, ...], nonce: str | None
) -> Identity:
    """The identity an ID token of ``provider`` asserts, or a refusal with its code.

    ``nonce`` None: the token must carry none either (a native sign-in that sent none).
    """
    try:
        _, unverified = external.unverified_parts(id_token)
    except InvalidJWT as exc:
        raise SocialTokenInvalid(str(exc)) from exc
    claimed_issuer = unverified.get("iss")
    if claimed_issuer not in provider.accepted_issuers():
        raise SocialTokenInvalid("The token's issuer is not the provider's.")
    entry = {
        "issuer": claimed_issuer,
        "audience": list(audiences),
        "algorithms": provider.algorithms,
    }
    keys = issuer_keys.issuer_keys(
        {"issuer": provider.issuer, "jwks_uri": endpoints(provider).jwks_uri}
    )
    try:
        claims = external.decode(id_token, entry, keys.key)
    except IssuerUnreachable as exc:
        raise SocialProviderUnavailable() from exc
    except InvalidJWT as exc:
        if exc.code == "token_expired":
            raise SocialTokenExpired() from exc
        raise SocialTokenInvalid(str(exc)) from exc
    audience, party = claims.get("aud"), claims.get("azp")
    several = isinstance(audience, list) and len(audience) > 1
    if (several or party is not None) and party not in provider.client_ids:
        # OpenID Connect Core 3.1.3.7: azp names the client the token was issued to, and
        # with several audiences it must be there.
        raise SocialTokenInvalid("The token was issued to another client (azp).")
    if not _same_nonce(claims.get("nonce"), nonce):
        raise SocialNonceMismatch()
    amr = claims.get("amr")
    email = claims.get("email")
    return Identity(
        issuer=provider.issuer,
        subject=claims["sub"],
        email=email if isinstance(email, str) else None,
        email_verified=claims.get("email_verified") is True,
        amr=tuple(value for value in amr if isinstance(value, str))
        if isinstance(amr, list)
        else (),
        expires_at=external.expiry_of(claims).timestamp(),
    )


def _same_nonce(claimed: Any, expected: str | None) -> bool:
    if expected is None:
        return claimed is None
    return isinstance(claimed, str) and hmac.compare_digest(claimed.encode(), expected.encode())


def github_identity(provider: Provider, access_token: str, *, check_app: bool) -> Identity:
    """The GitHub user an access token acts for, from GitHub's user API.

    ``check_app``: the token came from the client (a native sign-in), so first ask GitHub
    whether it was issued to this app; a token of another app must not sign in here.
    GitHub asserts an address verified only through ``/user/emails``.
    """
    api = provider.urls["api_url"].rstrip("/")
    if check_app:
        checked = _call(
            f"{api}/applications/{provider.client_id}/token",
            method="POST",
            body=_json_body({"access_token": access_token}),
            headers={"Content-Type": "application/json", **_basic(provider)},
        )
        if checked.status_code != 200:
            raise SocialTokenInvalid("GitHub does not know this token for this app.")
    headers = {"Authorization": f"Bearer {access_token}", "User-Agent": "tessera"}
    user = _call(f"{api}/user", headers=headers)
    if user.status_code != 200 or not isinstance(user.document, dict):
        raise SocialTokenInvalid("GitHub refused the access token.")
    subject = user.document.get("id")
    if not isinstance(subject, int) or isinstance(subject, bool):
        raise SocialTokenInvalid("GitHub's answer names no user.")
    emails = _call(f"{api}/user/emails", headers=headers)
    email, verified = None, False
    if emails.status_code == 200 and isinstance(emails.document, list):
        primary = next(
            (e for e in emails.document if isinstance(e, dict) and e.get("primary") is True),
            None,
        )
        if primary is not None and isinstance(primary.get("email"), str):
            email, verified = primary["email"], primary.get("verified") is True
    return Identity(
        issuer=provider.identity_issuer, subject=str(subject), email=email, email_verified=verified
    )


def _json_body(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def _basic(provider: Provider) -> dict[str, str]:
    pair = f"{provider.client_id}:{provider.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def provider_checked_mfa(amr: tuple[str, ...]) -> bool:
    """The provider says it checked several factors: ``mfa``, or factors of two kinds
    (a password and a one-time code; a security key and a fingerprint)."""
    kinds = [kind for kind, values in FACTOR_CLASSES.items() if values.intersection(amr)]
    return "mfa" in amr or len(kinds) >= 2


def login_amr(provider: Provider, identity: Identity) -> list[str]:
    """The session's amr: ``fed``, and ``mfa`` when the provider asserts several factors
    and its entry trusts the provider's word for it (``trust_mfa``)."""
    amr = ["fed"]
    if provider.trust_mfa and provider_checked_mfa(identity.amr):
        amr.append("mfa")
    return amr
