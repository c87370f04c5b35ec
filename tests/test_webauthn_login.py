"""Passkeys over HTTP: second factor of a password login, re-authentication, passwordless
login into each kind of session, and the recent authentication that managing keys needs."""

from __future__ import annotations

import os

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import user_logged_in

from tessera import signals
from tessera.models import Authenticator, LoginTicket, Session, WebAuthnChallenge

from .conftest import JWT_URL, LOGIN_URL, auth_header, log_in, post_login, receiving
from .webauthn_authenticator import SoftAuthenticator, flip_last_byte, tampered
from .webauthn_support import (
    PASSKEY_LOGIN_BEGIN,
    PASSKEY_LOGIN_COMPLETE,
    PASSKEYS,
    REAUTHENTICATE_BEGIN,
    REGISTER_BEGIN,
    error_code,
    passkey_url,
    passkeys_on_fixture,  # noqa: F401  (the passkeys_on fixture)
    register_passkey,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("passkeys_on")]
MFA_AUTHENTICATE = "/api/auth/mfa/authenticate/"
REAUTHENTICATE = "/api/auth/reauthenticate/"
SESSION_LOGIN = "/api/auth/session/login/"


@pytest.fixture
def alice(api, user) -> dict:
    """Alice's Authorization header, from a login before she had a passkey."""
    return auth_header(log_in(api)["token"])


@pytest.fixture
def key(api, alice, passkeys_on) -> SoftAuthenticator:
    """Alice's passkey, registered for passwordless login (it serves as a second factor too)."""
    key = SoftAuthenticator()
    register_passkey(api, alice, key, passwordless=True)
    return key


def current_session(client, headers: dict | None = None) -> dict:
    sessions = client.get("/api/auth/sessions/", **(headers or {})).json()
    return next(s for s in sessions if s["current"])


def field_code(response, field: str = "webauthn") -> str:
    assert response.status_code == 400, response.content
    return response.json()["fields"][field][0]["code"]


# --- Second factor of a password login ----------------------------------------------------


def test_a_password_login_asks_for_the_passkey(api, key):
    response = post_login(api)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "mfa_required"
    assert body["methods"] == ["webauthn", "recovery_codes"]
    options = body["options"]["webauthn"]
    assert [c["id"] for c in options["allowCredentials"]] == [key.id]
    assert options["rpId"] == "example.com"
    # No session yet: the one there is the fixture's, from before the passkey.
    assert Session.objects.count() == 1


def test_the_passkey_finishes_the_login_it_was_asked_for(api, key, hasher_calls):
    stopped = post_login(api, device_name="Work laptop").json()
    hasher_calls.reset_mock()
    credential = key.get(stopped["options"]["webauthn"])
    with receiving(signals.mfa_factor_used, "authenticator") as used:
        response = api.post(
            MFA_AUTHENTICATE, {"ticket": stopped["ticket"], "webauthn": credential}, format="json"
        )
    assert response.status_code == 200, response.content
    assert hasher_calls.call_count == 0
    token = response.json()["token"]
    session = current_session(api, auth_header(token))
    assert session["device_name"] == "Work laptop"
    assert session["amr"] == ["pwd", "hwk", "user", "mfa"]
    assert [a.credential_id for a in used] == [key.id]
    assert Authenticator.objects.get(credential_id=key.id).sign_count == 1


def test_each_kind_of_login_ends_in_its_own_answer(api, key):
    stopped = post_login(api, path=JWT_URL).json()
    credential = key.get(stopped["options"]["webauthn"])
    body = {"ticket": stopped["ticket"], "webauthn": credential}
    pair = api.post(MFA_AUTHENTICATE, body, format="json").json()
    assert set(pair) == {"access", "refresh", "user", "device"}


def test_without_user_verification_the_second_factor_is_a_key_alone(api, key):
    stopped = post_login(api).json()
    credential = key.get(stopped["options"]["webauthn"], user_verified=False)
    body = {"ticket": stopped["ticket"], "webauthn": credential}
    token = api.post(MFA_AUTHENTICATE, body, format="json").json()["token"]
    assert current_session(api, auth_header(token))["amr"] == ["pwd", "hwk", "mfa"]


def test_a_tampered_assertion_is_a_field_error_that_counts_against_the_ticket(api, key):
    stopped = post_login(api).json()
    credential = tampered(key.get(stopped["options"]["webauthn"]), "signature", flip_last_byte)
    with receiving(signals.mfa_failed, "code") as failures:
        response = api.post(
            MFA_AUTHENTICATE, {"ticket": stopped["ticket"], "webauthn": credential}, format="json"
        )
    assert response.json()["code"] == "invalid"
    assert field_code(response) == "webauthn_signature_invalid"
    assert failures == ["webauthn_signature_invalid"]
    assert LoginTicket.objects.get().failures == 1
    # The refusal spent nothing: the right assertion to the same challenge still passes.
    good = key.get(stopped["options"]["webauthn"])
    body = {"ticket": stopped["ticket"], "webauthn": good}
    assert api.post(MFA_AUTHENTICATE, body, format="json").status_code == 200


def test_repeated_refusals_kill_the_ticket(api, key, settings):
    settings.TESSERA = {**settings.TESSERA, "MFA_THROTTLE_RATES": {"ticket": None, "user": None}}
    stopped = post_login(api).json()
    options = stopped["options"]["webauthn"]

    def attempt(credential):
        body = {"ticket": stopped["ticket"], "webauthn": credential}
        return api.post(MFA_AUTHENTICATE, body, format="json")

    for _ in range(4):
        wrong = attempt(key.get(options, origin="https://evil.example"))
        assert field_code(wrong) == "webauthn_origin_invalid"
    fatal = attempt(key.get(options, origin="https://evil.example"))
    assert (fatal.status_code, error_code(fatal)) == (401, "invalid_ticket")
    assert error_code(attempt(key.get(options))) == "invalid_ticket"


def test_another_users_passkey_does_not_finish_alices_login(api, key, other_user):
    bob_key = SoftAuthenticator()
    register_passkey(api, auth_header(log_in(api, "bob")["token"]), bob_key)
    stopped = post_login(api).json()
    credential = bob_key.get(stopped["options"]["webauthn"])
    body = {"ticket": stopped["ticket"], "webauthn": credential}
    assert field_code(api.post(MFA_AUTHENTICATE, body, format="json")) == (
        "webauthn_credential_unknown"
    )


def test_an_assertion_replayed_on_a_new_ticket_is_refused(api, key):
    first = post_login(api).json()
    credential = key.get(first["options"]["webauthn"])
    body = {"ticket": first["ticket"], "webauthn": credential}
    assert api.post(MFA_AUTHENTICATE, body, format="json").status_code == 200
    again = api.post(MFA_AUTHENTICATE, body, format="json")
    assert error_code(again) == "invalid_ticket"
    second = post_login(api).json()
    body = {"ticket": second["ticket"], "webauthn": credential}
    assert field_code(api.post(MFA_AUTHENTICATE, body, format="json")) == (
        "webauthn_challenge_invalid"
    )


def test_a_code_still_works_beside_the_passkey(api, alice):
    first = SoftAuthenticator()
    codes = register_passkey(api, alice, first)["recovery_codes"]
    stopped = post_login(api).json()
    body = {"ticket": stopped["ticket"], "code": codes[0]}
    assert api.post(MFA_AUTHENTICATE, body, format="json").status_code == 200


def test_with_passkeys_switched_off_the_passkey_is_not_offered(api, key, settings):
    settings.TESSERA = {}
    stopped = post_login(api).json()
    assert stopped["methods"] == ["recovery_codes"]
    assert "webauthn" not in stopped["options"]
    body = {"ticket": stopped["ticket"], "webauthn": {"id": key.id}}
    assert field_code(api.post(MFA_AUTHENTICATE, body, format="json")) == "unavailable"


# --- Re-authentication --------------------------------------------------------------------


def test_reauthenticating_with_a_passkey_renews_auth_time(api, alice, key, clock):
    clock.advance(minutes=10)
    options = api.post(REAUTHENTICATE_BEGIN, **alice).json()
    assert [c["id"] for c in options["allowCredentials"]] == [key.id]
    response = api.post(REAUTHENTICATE, {"webauthn": key.get(options)}, format="json", **alice)
    assert response.status_code == 204, response.content
    session = current_session(api, alice)
    assert session["amr"] == ["pwd", "hwk", "user", "mfa"]
    assert Session.objects.get(pk=session["id"]).auth_time == clock.now


def test_a_refused_reauthentication_is_a_field_error(api, alice, key):
    options = api.post(REAUTHENTICATE_BEGIN, **alice).json()
    credential = key.get(options, rp_id="evil.example")
    response = api.post(REAUTHENTICATE, {"webauthn": credential}, format="json", **alice)
    assert field_code(response) == "webauthn_rp_id_invalid"


# --- Recent authentication for managing keys ----------------------------------------------


def test_registering_needs_a_recent_authentication(api, alice, clock):
    clock.advance(minutes=6)
    response = api.post(REGISTER_BEGIN, {}, format="json", **alice)
    assert response.status_code == 403
    assert error_code(response) == "reauthentication_required"
    assert (
        api.post(
            REAUTHENTICATE, {"password": "correct-horse-battery-staple"}, format="json", **alice
        ).status_code
        == 204
    )
    assert api.post(REGISTER_BEGIN, {}, format="json", **alice).status_code == 200


def test_deleting_needs_a_recent_authentication(api, alice, key, clock):
    passkey_id = api.get(PASSKEYS, **alice).json()[0]["id"]
    clock.advance(minutes=6)
    response = api.delete(passkey_url(passkey_id), **alice)
    assert error_code(response) == "reauthentication_required"
    # Renaming does not.
    renamed = api.patch(passkey_url(passkey_id), {"name": "Old"}, format="json", **alice)
    assert renamed.status_code == 200
    options = api.post(REAUTHENTICATE_BEGIN, **alice).json()
    api.post(REAUTHENTICATE, {"webauthn": key.get(options)}, format="json", **alice)
    assert api.delete(passkey_url(passkey_id), **alice).status_code == 204


def test_deleting_the_last_factor_takes_the_recovery_codes_along(api, alice, key):
    passkey_id = api.get(PASSKEYS, **alice).json()[0]["id"]
    with receiving(signals.mfa_factor_disabled, "authenticator") as disabled:
        assert api.delete(passkey_url(passkey_id), **alice).status_code == 204
    assert sorted(a.type for a in disabled) == ["recovery_codes", "webauthn"]
    assert not Authenticator.objects.exists()
    assert post_login(api).status_code == 200


def test_the_factor_list_shows_the_passkeys(api, alice, key):
    factors = api.get("/api/auth/mfa/", **alice).json()["factors"]
    assert [(f["type"], f["name"]) for f in factors] == [
        ("webauthn", "Laptop"),
        ("recovery_codes", ""),
    ]


# --- Passwordless login -------------------------------------------------------------------


def passwordless(client, key: SoftAuthenticator, **body):
    options = client.post(PASSKEY_LOGIN_BEGIN).json()
    credential = key.get(options)
    return client.post(PASSKEY_LOGIN_COMPLETE, {"credential": credential, **body}, format="json")


def test_a_passkey_logs_in_alone(api, user, key, hasher_calls):
    hasher_calls.reset_mock()
    with receiving(user_logged_in, "user") as logged_in:
        response = passwordless(api, key, device_name="Phone")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "expiry", "user", "session", "device"}
    assert body["user"]["username"] == "alice"
    assert body["session"]["device_name"] == "Phone"
    assert hasher_calls.call_count == 0
    assert logged_in == [user]
    assert current_session(api, auth_header(body["token"]))["amr"] == ["hwk", "user", "mfa"]


@pytest.mark.parametrize(
    "kind,fields",
    [
        ("token", {"token", "expiry", "user", "session", "device"}),
        ("jwt", {"access", "refresh", "user", "device"}),
    ],
)
def test_the_answer_is_the_password_logins(api, key, kind, fields):
    assert set(passwordless(api, key, kind=kind).json()) == fields
    assert set(passwordless(api, key, kind="sliding").json()) == {"token", "device"}


def test_a_browser_login_needs_the_csrf_token(browser, key):
    refused = passwordless(browser, key, kind="browser")
    assert refused.status_code == 403
    assert error_code(refused) == "csrf_failed"
    browser.get("/api/auth/csrf/")
    csrf = browser.cookies[django_settings.CSRF_COOKIE_NAME].value
    options = browser.post(PASSKEY_LOGIN_BEGIN).json()
    body = {"credential": key.get(options), "kind": "browser"}
    response = browser.post(PASSKEY_LOGIN_COMPLETE, body, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200
    # The device identifier only as its HttpOnly cookie, out of the page's reach.
    assert set(response.json()) == {"user", "session"}
    assert browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert "tessera_device" in response.cookies
    assert current_session(browser)["kind"] == "browser"


def test_jwt_cookie_mode_needs_the_csrf_token_and_sets_the_cookies(browser, key, settings):
    settings.TESSERA = {**settings.TESSERA, "JWT_COOKIES": True}
    assert error_code(passwordless(browser, key, kind="jwt")) == "csrf_failed"
    browser.get("/api/auth/csrf/")
    csrf = browser.cookies[django_settings.CSRF_COOKIE_NAME].value
    options = browser.post(PASSKEY_LOGIN_BEGIN).json()
    body = {"credential": key.get(options), "kind": "jwt"}
    response = browser.post(PASSKEY_LOGIN_COMPLETE, body, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200
    assert response.cookies["tessera_access"]["httponly"]


def test_a_refused_passwordless_login_says_why(api, key):
    options = api.post(PASSKEY_LOGIN_BEGIN).json()
    credential = tampered(key.get(options), "signature", flip_last_byte)
    response = api.post(PASSKEY_LOGIN_COMPLETE, {"credential": credential}, format="json")
    assert response.status_code == 400
    assert error_code(response) == "webauthn_signature_invalid"


def test_an_unknown_key_cannot_log_in(api, key):
    response = passwordless(api, SoftAuthenticator())
    assert error_code(response) == "webauthn_credential_unknown"


def test_a_second_factor_key_cannot_log_in_alone(api, alice):
    second_factor_only = SoftAuthenticator()
    register_passkey(api, alice, second_factor_only)
    response = passwordless(api, second_factor_only)
    assert error_code(response) == "webauthn_credential_not_passwordless"


def test_an_unverified_address_stops_a_passwordless_login_when_verification_is_mandatory(
    api, key, settings
):
    settings.TESSERA = {**settings.TESSERA, "EMAIL_VERIFICATION": "mandatory"}
    response = passwordless(api, key)
    assert response.status_code == 403
    assert error_code(response) == "email_not_verified"


def test_a_login_refused_at_the_session_limit_spends_nothing(api, key, settings):
    settings.TESSERA = {**settings.TESSERA, "TOKEN_LIMIT_PER_USER": 1}
    options = api.post(PASSKEY_LOGIN_BEGIN).json()
    credential = key.get(options)
    response = api.post(PASSKEY_LOGIN_COMPLETE, {"credential": credential}, format="json")
    assert error_code(response) == "session_limit_reached"
    assert Authenticator.objects.get(credential_id=key.id).sign_count == 0
    Session.objects.update(revoked_at="2000-01-01T00:00:00Z")
    again = api.post(PASSKEY_LOGIN_COMPLETE, {"credential": credential}, format="json")
    assert again.status_code == 200


@pytest.fixture
def elsewhere(api, key) -> None:
    """The client, once the key is registered, from an address whose login budget the
    set-up has not touched."""
    api.defaults["REMOTE_ADDR"] = "203.0.113.7"


@pytest.mark.usefixtures("elsewhere")
def test_asking_for_options_is_throttled_per_client(api, key, settings):
    settings.TESSERA = {**settings.TESSERA, "LOGIN_THROTTLE_RATES": {"ip": "3/min"}}
    assert [passwordless(api, key).status_code for _ in range(3)] == [200, 200, 200]
    response = api.post(PASSKEY_LOGIN_BEGIN)
    assert response.status_code == 429
    assert "Retry-After" in response


@pytest.mark.usefixtures("elsewhere")
def test_password_logins_and_passkey_logins_share_the_client_budget(api, key, settings):
    settings.TESSERA = {**settings.TESSERA, "LOGIN_THROTTLE_RATES": {"ip": "2/min"}}
    assert post_login(api, path=LOGIN_URL).status_code == 401  # mfa_required
    options = api.post(PASSKEY_LOGIN_BEGIN).json()
    assert (
        api.post(
            PASSKEY_LOGIN_COMPLETE, {"credential": key.get(options)}, format="json"
        ).status_code
        == 200
    )
    assert passwordless(api, key).status_code == 429


def test_passkeys_off_answers_404(api, key, settings):
    settings.TESSERA = {}
    response = api.post(PASSKEY_LOGIN_BEGIN)
    assert response.status_code == 404
    assert error_code(response) == "passkeys_disabled"


def test_a_deeply_nested_client_data_is_a_clean_400(api, key):
    options = api.post(PASSKEY_LOGIN_BEGIN).json()
    nested = b"[" * 15_000 + b"]" * 15_000
    credential = tampered(key.get(options), "clientDataJSON", lambda _: nested)
    response = api.post(PASSKEY_LOGIN_COMPLETE, {"credential": credential}, format="json")
    assert response.status_code == 400
    assert error_code(response) == "webauthn_invalid"


def test_a_credential_id_longer_than_webauthn_allows_is_refused(api, alice):
    from .webauthn_support import begin_registration, complete_registration

    oversized = SoftAuthenticator(credential_id=os.urandom(1100))
    options = begin_registration(api, alice)
    response = complete_registration(api, alice, oversized.create(options))
    assert response.status_code == 400
    assert error_code(response) == "webauthn_invalid"
    assert not Authenticator.objects.filter(type="webauthn").exists()
    assert error_code(passwordless(api, oversized)) == "webauthn_credential_unknown"


def test_reauthentication_options_need_a_passkey(api, alice):
    """Empty options would let a shared device offer other accounts' passkeys."""
    response = api.post(REAUTHENTICATE_BEGIN, **alice)
    assert response.status_code == 404
    assert not WebAuthnChallenge.objects.exists()


def test_reauthentication_options_are_throttled(api, alice, key, settings):
    settings.TESSERA = {**settings.TESSERA, "MFA_THROTTLE_RATES": {"user": "2/hour"}}
    statuses = [api.post(REAUTHENTICATE_BEGIN, **alice).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert WebAuthnChallenge.objects.filter(purpose="reauthenticate").count() == 2
