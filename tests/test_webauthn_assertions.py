"""Every check of an assertion, for each ceremony that asks for one.

The three ceremonies (second factor of a login ticket, re-authentication of a user,
passwordless login) share one verification; each refusal is tried against all three so
that none of them skips a check. The HTTP flows are in test_webauthn_login.py.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import APIException

from tessera import errors
from tessera.models import Authenticator, LoginTicket
from tessera.services.mfa import webauthn

from .conftest import auth_header, log_in
from .webauthn_authenticator import SoftAuthenticator, b64url, flip_last_byte, tampered
from .webauthn_support import (
    begin_registration,
    passkeys_on_fixture,  # noqa: F401  (the passkeys_on fixture)
    register_passkey,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("passkeys_on")]


def new_ticket(user) -> LoginTicket:
    now = timezone.now()
    return LoginTicket.objects.create(
        digest=secrets.token_hex(32),
        user=user,
        credential="token",
        amr=["pwd"],
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )


@dataclass
class Ceremony:
    name: str
    options: Callable[[], dict]
    verify: Callable[[dict], webauthn.Assertion]


def ceremony(name: str, user) -> Ceremony:
    if name == "second factor":
        ticket = new_ticket(user)
        return Ceremony(
            name,
            lambda: webauthn.second_factor_options(ticket),
            lambda credential: webauthn.verify_second_factor(ticket, credential),
        )
    if name == "reauthentication":
        return Ceremony(
            name,
            lambda: webauthn.reauthentication_options(user),
            lambda credential: webauthn.verify_reauthentication(user, credential),
        )
    return Ceremony(name, webauthn.passwordless_options, webauthn.verify_passwordless)


CEREMONIES = ["second factor", "reauthentication", "passwordless"]


def registered_key(api, headers: dict, **fields) -> SoftAuthenticator:
    """A passwordless key registered for the caller (it serves all three ceremonies)."""
    key = SoftAuthenticator(**fields)
    register_passkey(api, headers, key, passwordless=True)
    return key


@pytest.fixture
def alice(api, user) -> dict:
    """Alice's Authorization header, from a login before she had a passkey."""
    return auth_header(log_in(api)["token"])


@pytest.fixture
def bob_key(api, other_user) -> SoftAuthenticator:
    return registered_key(api, auth_header(log_in(api, "bob")["token"]))


@pytest.fixture
def key(api, alice) -> SoftAuthenticator:
    return registered_key(api, alice)


@pytest.fixture(params=CEREMONIES)
def run(request, user) -> Ceremony:
    return ceremony(request.param, user)


def refused(run: Ceremony, credential: dict) -> str:
    with pytest.raises(Exception) as caught:
        run.verify(credential)
    assert isinstance(caught.value, APIException), caught.value
    assert caught.value.status_code in (400, 409)
    return caught.value.default_code


# --- What each ceremony asks for ---------------------------------------------------------


def test_the_options_of_each_ceremony(user, key):
    second_factor = ceremony("second factor", user).options()
    assert [c["id"] for c in second_factor["allowCredentials"]] == [key.id]
    assert second_factor["userVerification"] == "preferred"
    assert second_factor["rpId"] == "example.com"
    reauthentication = ceremony("reauthentication", user).options()
    assert [c["id"] for c in reauthentication["allowCredentials"]] == [key.id]
    passwordless = ceremony("passwordless", user).options()
    assert passwordless["allowCredentials"] == []
    assert passwordless["userVerification"] == "required"
    challenges = {o["challenge"] for o in (second_factor, reauthentication, passwordless)}
    assert len(challenges) == 3


def test_a_good_assertion_passes_and_moves_the_counter(run, key, clock):
    assertion = run.verify(key.get(run.options()))
    assert assertion.authenticator.credential_id == key.id
    assert assertion.user_verified
    assert assertion.amr == ("hwk", "user")
    stored = Authenticator.objects.get(credential_id=key.id)
    assert (stored.sign_count, stored.last_used_at) == (1, clock.now)
    run.verify(key.get(run.options()))
    assert Authenticator.objects.get(credential_id=key.id).sign_count == 2


# --- Refusals, in every ceremony ----------------------------------------------------------


def test_a_wrong_origin_is_refused(run, key):
    credential = key.get(run.options(), origin="https://evil.example")
    assert refused(run, credential) == "webauthn_origin_invalid"


def test_an_origin_that_only_looks_alike_is_refused(run, key):
    credential = key.get(run.options(), origin="https://example.com.evil.example")
    assert refused(run, credential) == "webauthn_origin_invalid"


def test_a_ceremony_in_a_cross_origin_frame_is_refused(run, key):
    credential = key.get(run.options(), cross_origin=True)
    assert refused(run, credential) == "webauthn_origin_invalid"


def test_a_wrong_relying_party_id_is_refused(run, key):
    credential = key.get(run.options(), rp_id="evil.example")
    assert refused(run, credential) == "webauthn_rp_id_invalid"


def test_a_challenge_never_issued_is_refused(run, key):
    run.options()
    credential = key.get({"challenge": b64url(secrets.token_bytes(64))})
    assert refused(run, credential) == "webauthn_challenge_invalid"


def test_a_replayed_assertion_is_refused(run, key):
    credential = key.get(run.options())
    run.verify(credential)
    assert refused(run, credential) == "webauthn_challenge_invalid"


def test_an_expired_challenge_is_refused(run, key, clock):
    options = run.options()
    clock.advance(minutes=5)
    assert refused(run, key.get(options)) == "webauthn_challenge_invalid"


def test_a_tampered_signature_is_refused(run, key):
    credential = tampered(key.get(run.options()), "signature", flip_last_byte)
    assert refused(run, credential) == "webauthn_signature_invalid"


def test_tampered_authenticator_data_is_refused(run, key):
    # A higher counter written over the signed one.
    def raise_counter(data: bytes) -> bytes:
        return data[:33] + (2**31).to_bytes(4, "big") + data[37:]

    credential = tampered(key.get(run.options()), "authenticatorData", raise_counter)
    assert refused(run, credential) == "webauthn_signature_invalid"


def test_tampered_client_data_is_refused(run, key):
    def add_a_field(data: bytes) -> bytes:
        return json.dumps({**json.loads(data), "extra": "x"}).encode()

    credential = tampered(key.get(run.options()), "clientDataJSON", add_a_field)
    assert refused(run, credential) == "webauthn_signature_invalid"


def test_a_signature_by_another_key_is_refused(run, key):
    impostor = SoftAuthenticator(credential_id=key.credential_id, user_handle=key.user_handle)
    assert refused(run, impostor.get(run.options())) == "webauthn_signature_invalid"


def test_an_unknown_credential_is_refused(run, key):
    stranger = SoftAuthenticator(user_handle=key.user_handle)
    assert refused(run, stranger.get(run.options())) == "webauthn_credential_unknown"


def test_a_key_without_user_presence_is_refused(run, key):
    credential = key.get(run.options(), user_present=False)
    assert refused(run, credential) == "webauthn_invalid"


def test_a_registration_response_is_no_assertion(run, api, alice, key):
    run.options()
    creation = begin_registration(api, alice)
    assert refused(run, SoftAuthenticator().create(creation)) == "webauthn_invalid"


@pytest.mark.parametrize(
    "credential",
    [{}, {"id": "AAAA"}, "not an object", None, {"id": "AAAA", "rawId": "AAAA", "response": []}],
)
def test_a_malformed_assertion_is_refused(run, credential):
    assert refused(run, credential) == "webauthn_invalid"


def test_an_id_that_is_not_the_raw_id_is_refused(run, key):
    credential = key.get(run.options())
    credential["id"] = b64url(b"another id")
    assert refused(run, credential) == "webauthn_invalid"


# --- The signature counter ----------------------------------------------------------------


def test_a_counter_that_goes_back_is_refused_as_a_cloned_key(run, key):
    clone = key.clone()
    run.verify(key.get(run.options()))
    run.verify(key.get(run.options()))
    # The clone still counts from where it was copied: 1, not more than the stored 2.
    assert refused(run, clone.get(run.options())) == "webauthn_sign_count_regressed"
    assert Authenticator.objects.get(credential_id=key.id).sign_count == 2


def test_a_counter_that_stands_still_is_refused(run, key):
    run.verify(key.get(run.options()))
    key.counter_step = 0
    assert refused(run, key.get(run.options())) == "webauthn_sign_count_regressed"


def test_a_counter_back_to_zero_is_refused(run, key):
    run.verify(key.get(run.options()))
    key.sign_count, key.counter_step = 0, 0
    assert refused(run, key.get(run.options())) == "webauthn_sign_count_regressed"


def test_a_key_without_a_counter_always_reports_zero(run, api, alice):
    counterless = registered_key(api, alice, counter_step=0)
    for _ in range(3):
        run.verify(counterless.get(run.options()))
    assert Authenticator.objects.get(credential_id=counterless.id).sign_count == 0


def test_a_counter_may_jump_forward(run, key):
    key.counter_step = 1000
    run.verify(key.get(run.options()))
    assert Authenticator.objects.get(credential_id=key.id).sign_count == 1000


# --- User verification ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["second factor", "reauthentication"])
def test_a_second_factor_may_skip_user_verification_by_default(name, user, key):
    run = ceremony(name, user)
    assertion = run.verify(key.get(run.options(), user_verified=False))
    assert not assertion.user_verified
    assert assertion.amr == ("hwk",)


@pytest.mark.parametrize("name", ["second factor", "reauthentication"])
def test_user_verification_may_be_required_of_a_second_factor(name, user, key, settings):
    settings.TESSERA = {**settings.TESSERA, "WEBAUTHN_USER_VERIFICATION": "required"}
    run = ceremony(name, user)
    assert run.options()["userVerification"] == "required"
    credential = key.get(run.options(), user_verified=False)
    assert refused(run, credential) == "webauthn_user_verification_required"


def test_passwordless_always_requires_user_verification(user, key):
    run = ceremony("passwordless", user)
    credential = key.get(run.options(), user_verified=False)
    assert refused(run, credential) == "webauthn_user_verification_required"


# --- Bindings: purpose, user, ticket ------------------------------------------------------


@pytest.mark.parametrize(
    "issued_for,used_for", [(a, b) for a in CEREMONIES for b in CEREMONIES if a != b]
)
def test_a_challenge_serves_only_its_own_ceremony(issued_for, used_for, user, key):
    options = ceremony(issued_for, user).options()
    run = ceremony(used_for, user)
    assert refused(run, key.get(options)) == "webauthn_challenge_invalid"


def test_a_registration_challenge_serves_no_assertion(run, api, alice, key):
    creation = begin_registration(api, alice)
    credential = key.get({"challenge": creation["challenge"]})
    assert refused(run, credential) == "webauthn_challenge_invalid"


def test_another_tickets_challenge_is_refused(user, key):
    first, second = new_ticket(user), new_ticket(user)
    options = webauthn.second_factor_options(first)
    with pytest.raises(errors.WebAuthnChallengeInvalid):
        webauthn.verify_second_factor(second, key.get(options))
    assert webauthn.verify_second_factor(first, key.get(options))


def test_another_users_reauthentication_challenge_is_refused(user, other_user, key, bob_key):
    options = webauthn.reauthentication_options(user)
    with pytest.raises(errors.WebAuthnChallengeInvalid):
        webauthn.verify_reauthentication(other_user, bob_key.get(options))


@pytest.mark.parametrize("name", ["second factor", "reauthentication"])
def test_another_users_credential_is_refused(name, user, other_user, key, bob_key):
    run = ceremony(name, user)
    assert refused(run, bob_key.get(run.options())) == "webauthn_credential_unknown"
    # The key is fine for its own user.
    theirs = ceremony(name, other_user)
    assert theirs.verify(bob_key.get(theirs.options()))


def test_passwordless_finds_the_user_by_the_key(user, other_user, key, bob_key):
    run = ceremony("passwordless", user)
    assert run.verify(bob_key.get(run.options())).authenticator.user == other_user
    assert run.verify(key.get(run.options())).authenticator.user == user


def test_passwordless_checks_the_user_handle(user, key, other_user):
    key.user_handle = str(other_user.pk).encode()
    run = ceremony("passwordless", user)
    assert refused(run, key.get(run.options())) == "webauthn_credential_unknown"


def test_passwordless_accepts_an_assertion_without_a_user_handle(user, key):
    key.user_handle = None
    run = ceremony("passwordless", user)
    assert run.verify(key.get(run.options())).authenticator.user == user


def test_a_second_factor_only_key_cannot_log_in_alone(api, user, alice):
    second_factor_key = SoftAuthenticator()
    register_passkey(api, alice, second_factor_key)
    run = ceremony("passwordless", user)
    assert refused(run, second_factor_key.get(run.options())) == (
        "webauthn_credential_not_passwordless"
    )
    second_factor = ceremony("second factor", user)
    assert second_factor.verify(second_factor_key.get(second_factor.options()))


def test_an_inactive_users_key_is_unknown(run, user, key):
    user.is_active = False
    user.save()
    assert refused(run, key.get(run.options())) == "webauthn_credential_unknown"


def test_a_refused_assertion_leaves_the_challenge_unspent(run, key):
    options = run.options()
    assert refused(run, key.get(options, origin="https://evil.example"))
    assert run.verify(key.get(options))


def test_a_deleted_key_is_unknown(run, key):
    options = run.options()
    Authenticator.objects.filter(credential_id=key.id).delete()
    assert refused(run, key.get(options)) == "webauthn_credential_unknown"


def test_passkeys_off_refuses_every_ceremony(run, key, settings):
    options = run.options()
    settings.TESSERA = {}
    with pytest.raises(errors.PasskeysDisabled):
        run.verify(key.get(options))


def test_an_android_apps_origin_is_accepted_once_listed(run, key, settings):
    app = "android:apk-key-hash:" + b64url(bytes(32))
    assert refused(run, key.get(run.options(), origin=app)) == "webauthn_origin_invalid"
    origins = [*settings.TESSERA["WEBAUTHN_ORIGINS"], app]
    settings.TESSERA = {**settings.TESSERA, "WEBAUTHN_ORIGINS": origins}
    assert run.verify(key.get(run.options(), origin=app))
