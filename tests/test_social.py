"""Social sign-in against the fake provider: the redirect flow, each refusal, the native
flow, provider types, and the provider being down."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tessera.conf import tessera_settings
from tessera.models import (
    EventType,
    ExternalIdentity,
    SecurityEvent,
    Session,
    SocialApp,
    SocialLogin,
)
from tessera.services.mfa import encryption
from tessera.services.social import flow, providers

from .conftest import auth_header, create_user, with_csrf
from .fake_issuer import CLIENT_ID, CLIENT_SECRET, query_of
from .mfa_support import enable_totp
from .social_support import (
    LINKED_PAGE,
    authorize,
    back_from_provider,
    binding_cookie,
    callback,
    exchange,
    native,
    one_time_code,
    refusal,
    sign_in,
    sign_in_code,
    start,
    start_link,
)

pytestmark = pytest.mark.django_db

SESSIONS_URL = "/api/auth/sessions/"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


# --- The redirect flow -----------------------------------------------------------------


def test_authorize_redirects_to_the_provider_with_state_nonce_and_pkce(api, issuer, social):
    social(issuer)
    params = start(api)
    assert params["client_id"] == CLIENT_ID
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == "http://testserver/api/auth/social/acme/callback/"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert params["state"] and params["nonce"]
    assert params["scope"] == "openid email profile"
    row = SocialLogin.objects.get()
    # Only digests: neither the state nor what derives from it is stored.
    assert params["state"] not in row.state_digest
    assert row.state_digest != params["state"] and len(row.state_digest) == 64
    cookie = api.cookies[binding_cookie(params)]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # The callback and exchange/ both receive it.
    assert cookie["path"] == "/api/auth/social/"


def test_token_mode_signs_in_a_new_user_through_the_login_pipeline(api, issuer, social):
    social(issuer)
    body = sign_in(api, issuer)
    assert body["token"]
    session = Session.objects.get(pk=body["session"]["id"])
    assert session.provider == "acme" and session.amr == ["fed"]
    assert body["session"]["provider"] == "acme"
    identity = ExternalIdentity.objects.get()
    assert (identity.issuer, identity.subject, identity.provider) == (issuer.url, "user-1", "acme")
    user = identity.user
    assert user.email == "alice@example.com" and not user.has_usable_password()
    listed = api.get(SESSIONS_URL, **auth_header(body["token"])).json()
    assert [s["provider"] for s in listed] == ["acme"]
    types = set(SecurityEvent.objects.filter(user=user).values_list("type", flat=True))
    assert {EventType.REGISTERED, EventType.SOCIAL_LINKED, EventType.LOGIN_SUCCEEDED} <= types
    event = SecurityEvent.objects.get(type=EventType.LOGIN_SUCCEEDED)
    assert event.detail["provider"] == "acme"


def test_second_sign_in_reaches_the_same_account(api, issuer, social):
    social(issuer)
    first = sign_in(api, issuer)
    second = sign_in(api, issuer)
    assert first["user"] == second["user"]
    assert ExternalIdentity.objects.count() == 1


def test_jwt_mode_answers_a_token_pair(api, issuer, social):
    social(issuer)
    body = sign_in(api, issuer, mode="jwt")
    assert body["access"] and body["refresh"]
    assert Session.objects.get().kind == "jwt"


def test_session_mode_needs_the_csrf_token_at_exchange(browser, issuer, social):
    social(issuer)
    code = sign_in_code(browser, issuer, mode="session")
    refused = exchange(browser, code)
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    response = exchange(browser, code, **with_csrf(browser))
    assert response.status_code == 200, response.content
    assert Session.objects.get().kind == "browser"
    assert browser.get("/api/auth/sessions/").status_code == 200


def test_device_name_is_carried_to_the_session(api, issuer, social):
    social(issuer)
    sign_in(api, issuer, device_name="Phone")
    assert Session.objects.get().device_name == "Phone"


def test_logout_all_ends_the_social_session(api, issuer, social):
    social(issuer)
    token = sign_in(api, issuer)["token"]
    assert api.post("/api/auth/logout/all/", **auth_header(token)).status_code == 204
    assert api.get(SESSIONS_URL, **auth_header(token)).status_code == 401


def test_unknown_provider_is_404(api, issuer, social):
    social(issuer)
    response = authorize(api, "nobody")
    assert response.status_code == 404
    assert response.json()["code"] == "social_provider_unknown"


def test_bad_mode_is_400(api, issuer, social):
    social(issuer)
    response = authorize(api, mode="sliding")
    assert response.status_code == 400
    assert SocialLogin.objects.count() == 0


# --- Refusals of the redirect flow -------------------------------------------------------


def test_unknown_state_is_refused(api, issuer, social):
    social(issuer)
    params = start(api)
    response = callback(api, code=issuer.approve(params), state="made-up")
    assert refusal(response) == "social_state_invalid"
    assert ExternalIdentity.objects.count() == 0


def test_state_from_another_browser_is_refused(api, client, issuer, social):
    """Login CSRF: an attacker's own sign-in, finished in the victim's browser."""
    social(issuer)
    params = start(api)
    response = callback(client, code=issuer.approve(params), state=params["state"])
    assert refusal(response) == "social_state_invalid"
    assert SocialLogin.objects.get().state_used_at is None


def test_state_serves_one_callback(api, issuer, social):
    social(issuer)
    params = start(api)
    binding = api.cookies[binding_cookie(params)].value
    one_time_code(callback(api, code=issuer.approve(params), state=params["state"]))
    api.cookies[binding_cookie(params)] = binding
    again = callback(api, code=issuer.approve(params), state=params["state"])
    assert refusal(again) == "social_state_invalid"


def test_expired_state_is_refused(api, issuer, social, clock):
    social(issuer)
    params = start(api)
    clock.advance(minutes=11)
    response = callback(api, code=issuer.approve(params), state=params["state"])
    assert refusal(response) == "social_state_invalid"


def test_provider_error_answer_is_refused_and_spends_the_state(api, issuer, social):
    social(issuer)
    params = start(api)
    response = callback(api, error="access_denied", state=params["state"])
    assert refusal(response) == "social_provider_refused"
    assert SocialLogin.objects.get().state_used_at is not None


def test_code_bound_to_another_pkce_challenge_is_refused(api, issuer, social):
    """A code injected from another sign-in: the provider checks our verifier against
    the challenge that sign-in sent, and they differ."""
    social(issuer)
    attackers = start(api)
    victims = start(api)
    stolen = issuer.approve(attackers)
    response = callback(api, code=stolen, state=victims["state"])
    assert refusal(response) == "social_provider_refused"
    assert ExternalIdentity.objects.count() == 0


def test_wrong_nonce_is_refused(api, issuer, social):
    social(issuer)
    issuer.id_token_claims = {"nonce": "not-the-one-we-sent"}
    assert refusal(back_from_provider(api, issuer)) == "social_nonce_mismatch"
    assert ExternalIdentity.objects.count() == 0


def test_missing_nonce_is_refused(api, issuer, social):
    social(issuer)
    issuer.id_token_claims = {"nonce": None}
    assert refusal(back_from_provider(api, issuer)) == "social_nonce_mismatch"


@pytest.mark.parametrize(
    "claims",
    [{"aud": "another-client"}, {"iss": "https://evil.example"}, {"aud": [CLIENT_ID, "other"]}],
    ids=["audience", "issuer", "several-audiences-without-azp"],
)
def test_id_token_for_someone_else_is_refused(api, issuer, social, claims):
    social(issuer)
    issuer.id_token_claims = claims
    assert refusal(back_from_provider(api, issuer)) == "social_token_invalid"
    assert ExternalIdentity.objects.count() == 0


def test_expired_id_token_is_refused(api, issuer, social):
    social(issuer)
    now = int(time.time())
    issuer.id_token_claims = {"iat": now - 600, "exp": now - 300}
    assert refusal(back_from_provider(api, issuer)) == "social_token_expired"


def test_id_token_with_an_algorithm_not_pinned_is_refused(api, other_issuer, social):
    social(other_issuer)  # the issuer signs ES256; the entry pins RS256
    assert refusal(back_from_provider(api, other_issuer)) == "social_token_invalid"


def test_id_token_with_an_unknown_key_is_refused(api, issuer, social):
    social(issuer)
    token = issuer.token(headers={"kid": "never-published"}, aud=CLIENT_ID)
    response = native(api, id_token=token)
    assert response.status_code == 401
    assert response.json()["code"] == "social_token_invalid"
    assert ExternalIdentity.objects.count() == 0


def test_one_time_code_serves_one_exchange(api, issuer, social):
    social(issuer)
    code = sign_in_code(api, issuer)
    assert exchange(api, code).status_code == 200
    again = exchange(api, code)
    assert again.status_code == 400 and again.json()["code"] == "social_code_invalid"
    assert Session.objects.count() == 1


@pytest.mark.parametrize("mode", ["token", "jwt", "session"])
def test_code_exchanged_from_another_browser_is_refused(api, issuer, social, mode):
    """Login CSRF: the attacker's one-time code, sent to the victim's front end."""
    social(issuer)
    code = sign_in_code(api, issuer, mode=mode)
    victim = APIClient()
    refused = exchange(victim, code, **with_csrf(victim))
    assert refused.status_code == 403 and refused.json()["code"] == "social_browser_mismatch"
    assert Session.objects.count() == 0
    assert SocialLogin.objects.get().code_used_at is None
    # Nor does the binding of another sign-in of the victim's own make it pass.
    own = sign_in_code(victim, issuer)
    assert exchange(victim, code, **with_csrf(victim)).json()["code"] == "social_browser_mismatch"
    assert exchange(victim, own).status_code == 200
    # The browser that started it still can.
    response = exchange(api, code, **with_csrf(api))
    assert response.status_code == 200, response.content
    assert Session.objects.count() == 2


def test_exchange_drops_the_binding_cookie(api, issuer, social):
    social(issuer)
    params = start(api)
    code = one_time_code(callback(api, code=issuer.approve(params), state=params["state"]))
    response = exchange(api, code)
    assert response.status_code == 200
    assert response.cookies[binding_cookie(params)]["max-age"] == 0


def test_two_sign_ins_at_once_each_keep_their_binding(api, issuer, social):
    """Two tabs of one browser signing in with the same provider."""
    social(issuer)
    first, second = start(api), start(api)
    assert binding_cookie(first) != binding_cookie(second)
    for params in (first, second):
        code = one_time_code(callback(api, code=issuer.approve(params), state=params["state"]))
        assert exchange(api, code).status_code == 200


def test_pending_sign_ins_keep_a_bounded_number_of_cookies(api, issuer, social):
    social(issuer)
    started = [start(api) for _ in range(8)]
    kept = [name for name in api.cookies if name.startswith("tessera_social_")]
    live = [name for name in kept if api.cookies[name].value]
    assert len(live) == 4
    assert binding_cookie(started[-1]) in live
    latest = started[-1]
    code = one_time_code(callback(api, code=issuer.approve(latest), state=latest["state"]))
    assert exchange(api, code).status_code == 200


def test_expired_code_is_refused(api, issuer, social, clock):
    social(issuer)
    # Issued before the frozen clock's now, whatever second the test starts in.
    issuer.id_token_claims = {"iat": int(clock.now.timestamp()) - 5}
    code = sign_in_code(api, issuer)
    clock.advance(minutes=2)
    response = exchange(api, code)
    assert response.status_code == 400 and response.json()["code"] == "social_code_invalid"
    assert Session.objects.count() == 0


def test_unknown_code_is_refused(api, issuer, social):
    social(issuer)
    response = exchange(api, "x" * 43)
    assert response.status_code == 400 and response.json()["code"] == "social_code_invalid"


def test_code_is_stored_as_a_digest(api, issuer, social):
    social(issuer)
    code = sign_in_code(api, issuer)
    row = SocialLogin.objects.get()
    assert row.code_digest and code not in row.code_digest


def test_session_limit_leaves_the_code_usable(api, issuer, social, settings):
    social(issuer)
    settings.TESSERA = {**settings.TESSERA, "TOKEN_LIMIT_PER_USER": 1}
    sign_in(api, issuer)
    code = sign_in_code(api, issuer)
    refused = exchange(api, code)
    assert refused.status_code == 403 and refused.json()["code"] == "session_limit_reached"
    assert SocialLogin.objects.get(code_used_at__isnull=True, code_digest__isnull=False)


# --- Second factors ---------------------------------------------------------------------


def _linked_user(fake, username="alice", subject="user-1", provider="acme"):
    user = create_user(username)
    ExternalIdentity.objects.create(issuer=fake.url, subject=subject, user=user, provider=provider)
    return user


def test_user_with_a_second_factor_is_asked_for_it(api, issuer, social):
    social(issuer)
    enable_totp(_linked_user(issuer))
    response = exchange(api, sign_in_code(api, issuer))
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "mfa_required" and body["ticket"]
    assert Session.objects.count() == 0
    again = exchange(api, sign_in_code(api, issuer))
    assert again.json()["code"] == "mfa_required"


def test_provider_mfa_counts_only_when_the_entry_trusts_it(api, issuer, social):
    enable_totp(_linked_user(issuer))
    issuer.id_token_claims = {"amr": ["pwd", "mfa"]}
    social(issuer)
    assert exchange(api, sign_in_code(api, issuer)).json()["code"] == "mfa_required"
    social(issuer, trust_mfa=True)
    body = sign_in(api, issuer)
    assert Session.objects.get(pk=body["session"]["id"]).amr == ["fed", "mfa"]


def test_trusted_provider_without_mfa_still_needs_the_factor(api, issuer, social):
    enable_totp(_linked_user(issuer))
    issuer.id_token_claims = {"amr": ["pwd"]}
    social(issuer, trust_mfa=True)
    assert exchange(api, sign_in_code(api, issuer)).json()["code"] == "mfa_required"


@pytest.mark.parametrize(
    ("amr", "trusted"),
    [
        (["mfa"], True),
        (["pwd", "otp"], True),
        (["pin", "hwk"], True),
        (["swk", "fpt"], True),
        (["pwd", "face"], True),
        (["otp"], False),
        (["sms"], False),
        (["hwk"], False),
        (["swk"], False),
        (["face"], False),
        (["fpt"], False),
        (["pwd"], False),
        (["otp", "sms"], False),  # two factors of one kind: what one stolen phone gives
        (["face", "iris"], False),
        (["pwd", "kba"], False),
        ([], False),
    ],
)
def test_provider_mfa_is_mfa_or_two_kinds_of_factor(amr, trusted, settings):
    settings.TESSERA = {
        "SOCIAL_PROVIDERS": {
            "acme": {"type": "oidc", "issuer": "https://id.test", "client_id": "a"}
        }
    }
    identity = providers.Identity(
        issuer="https://id.test", subject="s", email=None, email_verified=False, amr=tuple(amr)
    )
    provider = providers.get("acme")
    assert providers.login_amr(provider, identity) == ["fed"]
    trusting = dataclasses.replace(provider, trust_mfa=True)
    assert providers.login_amr(trusting, identity) == (["fed", "mfa"] if trusted else ["fed"])


def test_trusted_provider_with_a_passwordless_code_still_needs_the_factor(api, issuer, social):
    enable_totp(_linked_user(issuer))
    issuer.id_token_claims = {"amr": ["otp"]}
    social(issuer, trust_mfa=True)
    assert exchange(api, sign_in_code(api, issuer)).json()["code"] == "mfa_required"
    assert Session.objects.count() == 0


# --- Provider types ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["google", "microsoft"])
def test_google_and_microsoft_are_openid_providers(api, issuer, social, kind):
    social(issuer, name=kind, kind=kind)
    body = sign_in(api, issuer, name=kind)
    assert Session.objects.get(pk=body["session"]["id"]).provider == kind


def test_presets_name_the_real_issuers(settings):
    settings.TESSERA = {
        "SOCIAL_PROVIDERS": {
            "google": {"type": "google", "client_id": "g"},
            "microsoft": {"type": "microsoft", "client_id": "m", "tenant": TENANT},
            "personal": {"type": "microsoft", "client_id": "m", "tenant": "consumers"},
        }
    }
    google = providers.get("google")
    assert google.issuer == "https://accounts.google.com"
    assert google.accepted_issuers() == ("https://accounts.google.com", "accounts.google.com")
    microsoft = providers.get("microsoft")
    assert microsoft.issuer == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert microsoft.accepted_issuers() == (microsoft.issuer,)
    personal = providers.get("personal").issuer
    assert personal == "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"


def test_github_signs_in_through_its_user_api(api, issuer, social):
    social(issuer, name="github", kind="github")
    params = start(api, "github")
    assert params["scope"] == "read:user user:email" and "nonce" not in params
    assert params["code_challenge_method"] == "S256"
    body = sign_in(api, issuer, name="github")
    identity = ExternalIdentity.objects.get()
    assert (identity.issuer, identity.subject) == (issuer.url, "4242")
    assert identity.user.email == "octo@example.com"
    assert Session.objects.get(pk=body["session"]["id"]).provider == "github"


def test_github_unverified_address_is_not_copied(api, issuer, social):
    social(issuer, name="github", kind="github")
    issuer.github_emails = [{"email": "octo@example.com", "primary": True, "verified": False}]
    sign_in(api, issuer, name="github")
    assert ExternalIdentity.objects.get().user.email == ""


def test_client_credentials_from_the_admin_model(api, issuer, social, settings):
    social(issuer, client_id="", client_secret="")
    SocialApp.objects.create(
        provider="acme", client_id=CLIENT_ID, secret=encryption.encrypt(CLIENT_SECRET)
    )
    assert start(api)["client_id"] == CLIENT_ID
    assert sign_in(api, issuer)["token"]


# --- The provider down ------------------------------------------------------------------


def test_provider_down_at_authorize_is_503(api, issuer, social, login, user):
    social(issuer)
    token = login()["token"]
    issuer.down = True
    response = authorize(api)
    assert response.status_code == 503
    assert response.json()["code"] == "social_provider_unavailable"
    assert response["Retry-After"]
    assert SocialLogin.objects.count() == 0
    assert api.get(SESSIONS_URL, **auth_header(token)).status_code == 200


def test_provider_down_at_callback_leads_to_the_error_page_and_can_be_retried(api, issuer, social):
    social(issuer)
    params = start(api)
    code = issuer.approve(params)
    issuer.down = True
    response = callback(api, code=code, state=params["state"])
    assert refusal(response) == "social_provider_unavailable"
    assert SocialLogin.objects.get().state_used_at is None
    assert binding_cookie(params) not in response.cookies
    issuer.down = False
    retried = callback(api, code=code, state=params["state"])
    assert exchange(api, one_time_code(retried)).status_code == 200


def test_provider_down_at_native_sign_in_is_503(api, issuer, social):
    social(issuer)
    issuer.down = True
    response = native(api, id_token=issuer.token(aud=CLIENT_ID))
    assert response.status_code == 503 and response["Retry-After"]


# --- Native sign-in ---------------------------------------------------------------------


def test_native_id_token_signs_in(api, issuer, social):
    social(issuer, native_client_ids=["ios-app"])
    response = native(
        api, id_token=issuer.token(aud="ios-app", nonce="n-1"), nonce="n-1", mode="jwt"
    )
    assert response.status_code == 200, response.content
    assert response.json()["access"]
    assert Session.objects.get().provider == "acme"


def test_native_rotated_key_is_fetched(api, issuer, social):
    social(issuer)
    assert native(api, id_token=issuer.token(aud=CLIENT_ID)).status_code == 200
    issuer.rotate()
    response = native(api, id_token=issuer.token(aud=CLIENT_ID))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("claims", "sent"),
    [({"nonce": "n-1"}, "n-2"), ({"nonce": "n-1"}, None), ({}, "n-1")],
    ids=["different", "token-has-one-request-none", "request-has-one-token-none"],
)
def test_native_nonce_must_match(api, issuer, social, claims, sent):
    social(issuer)
    body = {"id_token": issuer.token(aud=CLIENT_ID, **claims)}
    if sent is not None:
        body["nonce"] = sent
    response = native(api, **body)
    assert response.status_code == 401
    assert response.json()["code"] == "social_nonce_mismatch"
    assert ExternalIdentity.objects.count() == 0


def test_native_token_for_another_app_is_refused(api, issuer, social):
    social(issuer)
    response = native(api, id_token=issuer.token(aud="someone-elses-app"))
    assert response.status_code == 401 and response.json()["code"] == "social_token_invalid"


@pytest.mark.parametrize("azp", ["evil", ""])
def test_native_token_authorized_for_another_party_is_refused(api, issuer, social, azp):
    """The audience is this app, but azp names the client the token was issued to."""
    social(issuer)
    response = native(api, id_token=issuer.token(aud=CLIENT_ID, azp=azp))
    assert response.status_code == 401 and response.json()["code"] == "social_token_invalid"
    assert ExternalIdentity.objects.count() == 0


def test_native_token_authorized_for_a_native_app_signs_in(api, issuer, social):
    """Google's Android tokens: the web client as audience, the Android app as azp."""
    social(issuer, native_client_ids=["android-app"])
    response = native(api, id_token=issuer.token(aud=CLIENT_ID, azp="android-app"))
    assert response.status_code == 200, response.content


def test_native_id_token_serves_once(api, issuer, social):
    social(issuer)
    token = issuer.token(aud=CLIENT_ID, nonce="n-1")
    assert native(api, id_token=token, nonce="n-1").status_code == 200
    again = native(api, id_token=token, nonce="n-1")
    assert again.status_code == 401 and again.json()["code"] == "social_token_invalid"
    assert Session.objects.count() == 1
    other = native(api, id_token=issuer.token(aud=CLIENT_ID, nonce="n-2"), nonce="n-2")
    assert other.status_code == 200


def test_native_id_token_used_to_link_cannot_sign_in(api, issuer, social, login, user):
    social(issuer)
    token = issuer.token(aud=CLIENT_ID, sub="alice-at-acme")
    headers = auth_header(login()["token"])
    linked = api.post("/api/auth/social/acme/link/", {"id_token": token}, format="json", **headers)
    assert linked.status_code == 201, linked.content
    assert native(api, id_token=token).status_code == 401


def test_native_id_token_is_remembered_until_it_expires(issuer, social, settings):
    social(issuer)
    expires = int(time.time()) + 300
    token = issuer.token(aud=CLIENT_ID, exp=expires)
    with mock.patch.object(flow, "caches") as cache:
        cache.__getitem__.return_value.add.return_value = True
        flow.native_identity("acme", id_token=token)
    key, value, lifetime = cache.__getitem__.return_value.add.call_args.args
    assert token not in key and key.endswith(hashlib.sha256(token.encode()).hexdigest())
    leeway = settings.TESSERA.get("JWT_LEEWAY", timedelta(seconds=0)).total_seconds()
    assert expires + leeway - time.time() < lifetime <= expires + leeway - time.time() + 3


def test_native_sign_in_with_the_cache_down_is_503(api, issuer, social, monkeypatch):
    social(issuer)

    class Down:
        def add(self, *args, **kwargs):
            raise ConnectionError("the cache is down")

    monkeypatch.setattr(flow, "caches", {tessera_settings.CACHE_ALIAS: Down()})
    response = native(api, id_token=issuer.token(aud=CLIENT_ID))
    assert response.status_code == 503 and response["Retry-After"]
    assert Session.objects.count() == 0 and ExternalIdentity.objects.count() == 0


def test_native_needs_one_token(api, issuer, social):
    social(issuer)
    response = native(api)
    assert response.status_code == 400


def test_native_github_access_token_signs_in(api, issuer, social):
    social(issuer, name="github", kind="github")
    response = native(api, "github", access_token=issuer.github_token())
    assert response.status_code == 200, response.content
    assert ExternalIdentity.objects.get().subject == "4242"


def test_native_github_token_of_another_app_is_refused(api, issuer, social):
    social(issuer, name="github", kind="github")
    response = native(api, "github", access_token=issuer.github_token(app=False))
    assert response.status_code == 401 and response.json()["code"] == "social_token_invalid"
    assert ExternalIdentity.objects.count() == 0


# --- Linking, listing, unlinking ----------------------------------------------------------


def test_link_from_a_signed_in_account(api, issuer, social, login, user):
    social(issuer)
    token = login()["token"]
    response = api.post(
        "/api/auth/social/acme/link/",
        {"id_token": issuer.token(aud=CLIENT_ID, sub="alice-at-acme")},
        format="json",
        **auth_header(token),
    )
    assert response.status_code == 201, response.content
    assert response.json()["provider"] == "acme"
    listed = api.get("/api/auth/social/accounts/", **auth_header(token)).json()
    assert [(i["provider"], i["subject"]) for i in listed] == [("acme", "alice-at-acme")]
    assert SecurityEvent.objects.filter(type=EventType.SOCIAL_LINKED, user=user).count() == 1
    # Now the identity signs in to alice (with a token of its own: each serves once).
    token = issuer.token(aud=CLIENT_ID, sub="alice-at-acme", jti="second")
    body = native(api, id_token=token).json()
    assert body["user"]["username"] == "alice"


def test_link_of_an_identity_linked_elsewhere_is_409(api, issuer, social, login, user):
    social(issuer)
    _linked_user(issuer, "bob", subject="bobs")
    token = login()["token"]
    response = api.post(
        "/api/auth/social/acme/link/",
        {"id_token": issuer.token(aud=CLIENT_ID, sub="bobs")},
        format="json",
        **auth_header(token),
    )
    assert response.status_code == 409 and response.json()["code"] == "social_identity_taken"
    assert ExternalIdentity.objects.get().user.username == "bob"


def _browser_signed_in(browser) -> dict:
    headers = with_csrf(browser)
    response = browser.post(
        "/api/auth/session/login/",
        {"username": "alice", "password": "correct-horse-battery-staple"},
        format="json",
        **headers,
    )
    assert response.status_code == 200, response.content
    # The login rotated the CSRF token.
    return {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}


def test_link_through_the_redirect_flow(browser, issuer, social, user):
    social(issuer)
    headers = _browser_signed_in(browser)
    issuer.user = {"sub": "alice-acme", "email": "other@example.com", "email_verified": True}
    started = start_link(browser, **headers)
    assert started.status_code == 302, started.content
    params = query_of(started["Location"])
    response = callback(browser, code=issuer.approve(params), state=params["state"])
    assert response["Location"] == LINKED_PAGE + "acme"
    assert ExternalIdentity.objects.get().user == user
    # Nothing follows a link: the binding is dropped at the callback.
    assert response.cookies[binding_cookie(params)]["max-age"] == 0


def test_link_starts_from_a_form_with_the_csrf_field(browser, issuer, social, user):
    social(issuer)
    token = _browser_signed_in(browser)["HTTP_X_CSRFTOKEN"]
    response = browser.post(
        "/api/auth/social/acme/authorize/",
        f"mode=link&csrfmiddlewaretoken={token}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302, response.content
    assert SocialLogin.objects.get().link_user == user


def test_link_cannot_start_with_a_get(browser, issuer, social, user):
    """A GET can come from any site's link, with the Lax session cookie."""
    social(issuer)
    _browser_signed_in(browser)
    response = authorize(browser, mode="link")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "mode" in response.json()["fields"]
    assert SocialLogin.objects.count() == 0


def test_link_start_needs_the_csrf_token(browser, issuer, social, user):
    social(issuer)
    _browser_signed_in(browser)
    response = start_link(browser)
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert SocialLogin.objects.count() == 0


def test_link_mode_needs_a_signed_in_user(api, issuer, social):
    social(issuer)
    response = start_link(api, **with_csrf(api))
    assert response.status_code == 401
    assert SocialLogin.objects.count() == 0


def test_link_start_needs_a_recent_authentication(browser, issuer, social, user, clock):
    social(issuer)
    headers = _browser_signed_in(browser)
    clock.advance(minutes=20)
    response = start_link(browser, **headers)
    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert SocialLogin.objects.count() == 0


def test_unlink_keeps_the_last_way_to_log_in(api, issuer, social):
    social(issuer)
    body = sign_in(api, issuer)
    token = body["token"]
    identity = ExternalIdentity.objects.get()
    response = api.delete(f"/api/auth/social/accounts/{identity.pk}/", **auth_header(token))
    assert response.status_code == 409
    assert response.json()["code"] == "social_last_login_method"
    assert ExternalIdentity.objects.filter(pk=identity.pk).exists()


def test_unlink_with_a_password(api, issuer, social, login, user):
    social(issuer)
    identity = ExternalIdentity.objects.create(
        issuer=issuer.url, subject="s", user=user, provider="acme"
    )
    token = login()["token"]
    response = api.delete(f"/api/auth/social/accounts/{identity.pk}/", **auth_header(token))
    assert response.status_code == 204
    assert not ExternalIdentity.objects.exists()
    event = SecurityEvent.objects.get(type=EventType.SOCIAL_UNLINKED)
    assert event.detail == {"provider": "acme"}


def test_unlink_with_another_identity_left(api, issuer, other_issuer, social):
    social(issuer)
    social(other_issuer, name="other")
    token = sign_in(api, issuer)["token"]
    user = ExternalIdentity.objects.get().user
    ExternalIdentity.objects.create(
        issuer=other_issuer.url, subject="x", user=user, provider="other"
    )
    first = ExternalIdentity.objects.get(provider="acme")
    response = api.delete(f"/api/auth/social/accounts/{first.pk}/", **auth_header(token))
    assert response.status_code == 204


@pytest.mark.parametrize(
    "left",
    [
        {"issuer": "https://api-issuer.example", "provider": ""},  # a resource server's link
        {"issuer": "https://gone.example", "provider": "gone"},  # a provider since removed
    ],
)
def test_an_identity_that_signs_in_nowhere_is_not_another_way_in(api, issuer, social, left):
    social(issuer)
    token = sign_in(api, issuer)["token"]
    user = ExternalIdentity.objects.get().user
    ExternalIdentity.objects.create(subject="x", user=user, **left)
    first = ExternalIdentity.objects.get(provider="acme")
    response = api.delete(f"/api/auth/social/accounts/{first.pk}/", **auth_header(token))
    assert response.status_code == 409
    assert response.json()["code"] == "social_last_login_method"
    assert ExternalIdentity.objects.filter(pk=first.pk).exists()


def test_an_unlinked_identity_signs_up_again(api, issuer, social, login):
    social(issuer)
    sign_in(api, issuer)
    first_account = ExternalIdentity.objects.get().user
    first_account.set_password("A-good-pass-123")
    first_account.save()
    token = login(username=first_account.username, password="A-good-pass-123")["token"]
    identity = ExternalIdentity.objects.get()
    response = api.delete(f"/api/auth/social/accounts/{identity.pk}/", **auth_header(token))
    assert response.status_code == 204
    body = sign_in(api, issuer)
    second_account = ExternalIdentity.objects.get().user
    assert second_account != first_account
    assert body["user"]["username"] == second_account.username


def test_unlink_of_another_users_identity_is_404(api, issuer, social, login, user):
    social(issuer)
    theirs = _linked_user(issuer, "bob", subject="bobs")
    identity = theirs.external_identities.get()
    token = login()["token"]
    response = api.delete(f"/api/auth/social/accounts/{identity.pk}/", **auth_header(token))
    assert response.status_code == 404
    assert ExternalIdentity.objects.filter(pk=identity.pk).exists()


# --- Cleanup and the admin ------------------------------------------------------------------


def test_clearsessions_deletes_finished_and_expired_sign_ins(api, issuer, social, clock):
    social(issuer)
    issuer.id_token_claims = {"iat": int(clock.now.timestamp()) - 5}
    exchange(api, sign_in_code(api, issuer))  # code used
    sign_in_code(api, issuer)  # code live
    start(api)  # state live
    out = StringIO()
    call_command("tessera_clearsessions", stdout=out)
    assert "1 finished or expired social sign-in(s)" in out.getvalue()
    assert SocialLogin.objects.count() == 2
    clock.advance(minutes=11)
    call_command("tessera_clearsessions", stdout=StringIO())
    assert SocialLogin.objects.count() == 0


def test_admin_stores_the_client_secret_encrypted(admin_client, db):
    response = admin_client.post(
        "/admin/tessera/socialapp/add/",
        {"provider": "acme", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert response.status_code == 302, response.content
    app = SocialApp.objects.get()
    assert CLIENT_SECRET not in app.secret
    assert encryption.decrypt(app.secret) == CLIENT_SECRET
    page = admin_client.get(f"/admin/tessera/socialapp/{app.pk}/change/")
    assert app.secret not in page.content.decode()
    admin_client.post(
        f"/admin/tessera/socialapp/{app.pk}/change/", {"provider": "acme", "client_id": "new"}
    )
    app.refresh_from_db()
    assert app.client_id == "new" and encryption.decrypt(app.secret) == CLIENT_SECRET


# --- Discovery and the redirect URI ---------------------------------------------------------


def test_discovery_is_fetched_once_per_process(api, issuer, social):
    social(issuer)
    sign_in(api, issuer)
    sign_in(api, issuer)
    assert issuer.requests.count("/.well-known/openid-configuration") == 1


def test_discovery_document_of_another_issuer_is_refused(api, issuer, other_issuer, social):
    social(issuer, issuer=other_issuer.url)
    other_issuer.discovery = issuer.discovery  # names the first issuer, not itself
    response = authorize(api)
    assert response.status_code == 503
    assert response.json()["code"] == "social_provider_unavailable"


def test_entry_redirect_uri_is_sent_to_the_provider(api, issuer, social):
    social(issuer, redirect_uri="https://api.example.test/api/auth/social/acme/callback/")
    params = start(api)
    assert params["redirect_uri"] == "https://api.example.test/api/auth/social/acme/callback/"
