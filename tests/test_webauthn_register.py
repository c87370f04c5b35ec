"""Registering passkeys, several per user and named; listing, renaming, deleting them."""

from __future__ import annotations

import hashlib
import struct
from datetime import timedelta
from io import StringIO

import cbor2
import pytest
from django.core.management import call_command

from tessera import signals
from tessera.models import Authenticator, WebAuthnChallenge

from .conftest import PROTECTED_URL, auth_header, log_in, receiving
from .webauthn_authenticator import RP_ID, SoftAuthenticator, unb64url
from .webauthn_support import (
    APP_ORIGIN,
    PASSKEYS,
    REGISTER_BEGIN,
    begin_registration,
    complete_registration,
    error_code,
    passkey_url,
    passkeys_on_fixture,  # noqa: F401  (the passkeys_on fixture)
    register_passkey,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("passkeys_on")]


@pytest.fixture
def alice(api, user) -> dict:
    """Alice's Authorization header, from a fresh login."""
    return auth_header(log_in(api)["token"])


def test_creation_options_name_the_relying_party_and_the_user(api, user, alice):
    options = begin_registration(api, alice)
    assert options["rp"] == {"id": RP_ID, "name": RP_ID}
    assert options["user"]["name"] == "alice"
    assert unb64url(options["user"]["id"]) == str(user.pk).encode()
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["timeout"] == 5 * 60 * 1000
    assert {p["alg"] for p in options["pubKeyCredParams"]} >= {-7}
    # A second-factor key need not be stored on the authenticator.
    assert options["authenticatorSelection"]["residentKey"] == "discouraged"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"


def test_a_passwordless_key_must_be_discoverable_and_verify_the_user(api, alice):
    selection = begin_registration(api, alice, passwordless=True)["authenticatorSelection"]
    assert selection == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }


def test_begin_takes_an_empty_body(api, alice):
    response = api.post(REGISTER_BEGIN, **alice)
    assert response.status_code == 200
    assert response.json()["authenticatorSelection"]["residentKey"] == "discouraged"


def test_the_challenge_is_stored_as_a_digest_bound_to_the_user(api, user, alice):
    options = begin_registration(api, alice)
    challenge = unb64url(options["challenge"])
    stored = WebAuthnChallenge.objects.get()
    assert stored.digest == hashlib.sha256(challenge).hexdigest()
    assert options["challenge"] not in stored.digest
    assert (stored.purpose, stored.user, stored.ticket, stored.used_at) == (
        "register",
        user,
        None,
        None,
    )
    assert stored.expires_at - stored.created_at == timedelta(minutes=5)


def test_registration_stores_the_key_and_answers_its_public_information(api, user, alice):
    key = SoftAuthenticator()
    body = register_passkey(api, alice, key, name="Work laptop")
    stored = Authenticator.objects.get(type="webauthn")
    codes = body.pop("recovery_codes")
    assert body == {
        "id": str(stored.pk),
        "type": "webauthn",
        "name": "Work laptop",
        "created": body["created"],
        "last_used": None,
        "passwordless": False,
        "transports": ["internal", "hybrid"],
    }
    assert len(codes) == 10
    assert stored.user == user
    assert stored.credential_id == key.id
    assert stored.confirmed_at is not None
    assert stored.sign_count == 0
    # The COSE public key, never anything secret.
    assert b"\x01\x02\x03\x26" in bytes(stored.public_key)


def test_the_first_factor_comes_with_recovery_codes_and_the_next_does_not(api, alice):
    with receiving(signals.mfa_factor_confirmed, "authenticator") as confirmed:
        first = register_passkey(api, alice)
        second = register_passkey(api, alice)
    assert len(first["recovery_codes"]) == 10
    assert "recovery_codes" not in second
    assert [str(a.pk) for a in confirmed] == [first["id"], second["id"]]
    assert Authenticator.objects.filter(type="recovery_codes").count() == 1


def test_several_named_keys_per_user_and_each_key_excluded_next_time(api, alice):
    first, second = SoftAuthenticator(), SoftAuthenticator()
    register_passkey(api, alice, first, name="Laptop")
    options = begin_registration(api, alice)
    assert [c["id"] for c in options["excludeCredentials"]] == [first.id]
    assert options["excludeCredentials"][0]["transports"] == ["internal", "hybrid"]
    response = complete_registration(api, alice, second.create(options), name="Phone")
    assert response.status_code == 201
    listed = api.get(PASSKEYS, **alice).json()
    assert [(k["name"], k["passwordless"]) for k in listed] == [
        ("Laptop", False),
        ("Phone", False),
    ]


def test_a_key_without_a_name_is_called_passkey(api, alice):
    assert register_passkey(api, alice, name="")["name"] == "Passkey"


def test_the_same_key_twice_is_409(api, alice, other_user):
    key = SoftAuthenticator()
    register_passkey(api, alice, key)
    again = complete_registration(api, alice, key.create(begin_registration(api, alice)))
    assert again.status_code == 409
    assert error_code(again) == "webauthn_credential_registered"
    # Not for another account either: a credential id names one key of one user.
    bob = auth_header(log_in(api, "bob")["token"])
    theirs = complete_registration(api, bob, key.create(begin_registration(api, bob)))
    assert error_code(theirs) == "webauthn_credential_registered"
    assert Authenticator.objects.filter(type="webauthn").count() == 1


def test_a_passwordless_key_is_registered_as_such(api, alice):
    body = register_passkey(api, alice, passwordless=True)
    assert body["passwordless"] is True


def test_a_passwordless_key_the_browser_did_not_store_is_refused(api, alice):
    options = begin_registration(api, alice, passwordless=True)
    credential = SoftAuthenticator().create(options, discoverable=False)
    response = complete_registration(api, alice, credential, passwordless=True)
    assert response.status_code == 400
    assert error_code(response) == "webauthn_credential_not_discoverable"


def test_a_browser_that_does_not_report_storage_is_believed(api, alice):
    options = begin_registration(api, alice, passwordless=True)
    credential = SoftAuthenticator().create(options, discoverable=None)
    assert complete_registration(api, alice, credential, passwordless=True).status_code == 201


def test_a_passwordless_key_must_have_verified_the_user(api, alice):
    options = begin_registration(api, alice, passwordless=True)
    credential = SoftAuthenticator().create(options, user_verified=False)
    response = complete_registration(api, alice, credential, passwordless=True)
    assert error_code(response) == "webauthn_user_verification_required"


def test_a_second_factor_key_may_skip_user_verification_unless_required(api, alice, settings):
    options = begin_registration(api, alice)
    credential = SoftAuthenticator().create(options, user_verified=False)
    assert complete_registration(api, alice, credential).status_code == 201
    settings.TESSERA = {**settings.TESSERA, "WEBAUTHN_USER_VERIFICATION": "required"}
    options = begin_registration(api, alice)
    assert options["authenticatorSelection"]["userVerification"] == "required"
    credential = SoftAuthenticator().create(options, user_verified=False)
    response = complete_registration(api, alice, credential)
    assert error_code(response) == "webauthn_user_verification_required"


# --- Refusals ---------------------------------------------------------------------------


def test_a_wrong_origin_is_refused(api, alice):
    options = begin_registration(api, alice)
    credential = SoftAuthenticator().create(options, origin="https://evil.example")
    response = complete_registration(api, alice, credential)
    assert response.status_code == 400
    assert error_code(response) == "webauthn_origin_invalid"
    assert not Authenticator.objects.exists()


def test_a_wrong_relying_party_id_is_refused(api, alice):
    options = begin_registration(api, alice)
    credential = SoftAuthenticator().create(options, rp_id="evil.example")
    assert error_code(complete_registration(api, alice, credential)) == "webauthn_rp_id_invalid"


def test_a_challenge_never_issued_is_refused(api, alice):
    options = begin_registration(api, alice)
    credential = SoftAuthenticator().create(options, challenge="bm90LWlzc3VlZA")
    assert error_code(complete_registration(api, alice, credential)) == "webauthn_challenge_invalid"


def test_a_challenge_serves_one_registration(api, alice):
    options = begin_registration(api, alice)
    assert complete_registration(api, alice, SoftAuthenticator().create(options)).status_code == 201
    again = complete_registration(api, alice, SoftAuthenticator().create(options))
    assert error_code(again) == "webauthn_challenge_invalid"


def test_a_refused_response_leaves_the_challenge_unspent(api, alice):
    options = begin_registration(api, alice)
    refused = SoftAuthenticator().create(options, rp_id="evil.example")
    assert error_code(complete_registration(api, alice, refused)) == "webauthn_rp_id_invalid"
    retry = complete_registration(api, alice, SoftAuthenticator().create(options))
    assert retry.status_code == 201


def test_an_expired_challenge_is_refused(api, alice, clock):
    options = begin_registration(api, alice)
    clock.advance(minutes=5, seconds=1)
    response = complete_registration(api, alice, SoftAuthenticator().create(options))
    assert error_code(response) == "webauthn_challenge_invalid"


def test_another_users_challenge_is_refused(api, alice, other_user):
    options = begin_registration(api, alice)
    bob = auth_header(log_in(api, "bob")["token"])
    response = complete_registration(api, bob, SoftAuthenticator().create(options))
    assert error_code(response) == "webauthn_challenge_invalid"
    # Still Alice's to use.
    assert complete_registration(api, alice, SoftAuthenticator().create(options)).status_code == 201


def test_an_assertion_is_no_registration(api, alice):
    options = begin_registration(api, alice)
    assertion = SoftAuthenticator().get({"challenge": options["challenge"], "rpId": RP_ID})
    response = complete_registration(api, alice, assertion)
    assert error_code(response) == "webauthn_invalid"


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"id": "x", "rawId": "x", "type": "public-key", "response": {}},
        {
            "id": "AAAA",
            "rawId": "AAAA",
            "type": "public-key",
            "response": {"clientDataJSON": "!!", "attestationObject": "AAAA"},
        },
        {
            "id": "AAAA",
            "rawId": "AAAA",
            "type": "public-key",
            "response": {"clientDataJSON": "e30", "attestationObject": "oA"},
        },
    ],
    ids=["empty", "no response fields", "not base64url", "not client data"],
)
def test_a_malformed_credential_is_400(api, alice, credential):
    response = complete_registration(api, alice, credential)
    assert response.status_code == 400
    assert error_code(response) == "webauthn_invalid"


def test_a_credential_that_is_not_an_object_is_a_field_error(api, alice):
    response = complete_registration(api, alice, "not-an-object")
    assert response.status_code == 400
    assert response.json()["fields"]["credential"][0]["code"] == "not_a_dict"


def test_anonymous_callers_cannot_register(api):
    assert api.post(REGISTER_BEGIN, {}, format="json").status_code == 401


def test_passkeys_off_answers_404_passkeys_disabled(api, alice, settings):
    settings.TESSERA = {}
    response = api.post(REGISTER_BEGIN, {}, format="json", **alice)
    assert response.status_code == 404
    assert error_code(response) == "passkeys_disabled"


def test_the_page_origin_may_be_any_allowed_one(api, alice):
    options = begin_registration(api, alice)
    credential = SoftAuthenticator().create(options, origin=APP_ORIGIN)
    assert complete_registration(api, alice, credential).status_code == 201


# --- The user's keys ----------------------------------------------------------------------


def test_renaming_a_key(api, alice):
    passkey = register_passkey(api, alice, name="Laptop")
    response = api.patch(passkey_url(passkey["id"]), {"name": "Old laptop"}, format="json", **alice)
    assert response.status_code == 200
    assert response.json()["name"] == "Old laptop"
    assert Authenticator.objects.get(type="webauthn").name == "Old laptop"


def test_a_name_is_bounded(api, alice):
    passkey = register_passkey(api, alice)
    response = api.patch(passkey_url(passkey["id"]), {"name": "x" * 65}, format="json", **alice)
    assert response.json()["fields"]["name"][0]["code"] == "max_length"


def test_deleting_a_key(api, alice):
    keep = register_passkey(api, alice, name="Keep")
    gone = register_passkey(api, alice, name="Gone")
    assert api.delete(passkey_url(gone["id"]), **alice).status_code == 204
    assert [k["id"] for k in api.get(PASSKEYS, **alice).json()] == [keep["id"]]


def test_another_users_key_is_404(api, alice, other_user):
    passkey = register_passkey(api, alice)
    bob = auth_header(log_in(api, "bob")["token"])
    url = passkey_url(passkey["id"])
    assert api.patch(url, {"name": "Mine now"}, format="json", **bob).status_code == 404
    assert api.delete(url, **bob).status_code == 404
    assert api.get(PASSKEYS, **bob).json() == []
    assert Authenticator.objects.get(type="webauthn").name == "Laptop"


@pytest.mark.parametrize("passkey_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_id_is_404(api, alice, passkey_id):
    assert api.delete(passkey_url(passkey_id), **alice).status_code == 404


def test_other_factors_are_not_passkeys(api, user, alice):
    totp = Authenticator.objects.create(user=user, type="totp", name="Phone app")
    assert api.get(PASSKEYS, **alice).json() == []
    assert api.delete(passkey_url(str(totp.pk)), **alice).status_code == 404


def test_clearsessions_deletes_used_and_expired_challenges(api, alice, clock, settings):
    settings.TESSERA = {**settings.TESSERA, "MFA_RECENT_AUTH_MAX_AGE": timedelta(hours=1)}
    used = begin_registration(api, alice)
    complete_registration(api, alice, SoftAuthenticator().create(used))
    begin_registration(api, alice)  # expires
    clock.advance(minutes=6)
    live = begin_registration(api, alice)
    out = StringIO()
    call_command("tessera_clearsessions", stdout=out)
    assert "2 used or expired passkey challenge(s)" in out.getvalue()
    (kept,) = WebAuthnChallenge.objects.all()
    assert kept.digest == hashlib.sha256(unb64url(live["challenge"])).hexdigest()


def test_a_passkey_ends_the_wait_for_enrolment(api, user, settings):
    settings.TESSERA = {**settings.TESSERA, "MFA_REQUIRED": "all"}
    waiting = auth_header(log_in(api)["token"])
    refused = api.get(PROTECTED_URL, **waiting)
    assert (refused.status_code, error_code(refused)) == (403, "mfa_enrolment_required")
    register_passkey(api, waiting)
    assert api.get(PROTECTED_URL, **waiting).status_code == 200


class OffCurveKey(SoftAuthenticator):
    """An authenticator whose public key is no point of its curve: nothing could verify."""

    def credential_id_and_key(self) -> bytes:
        cose_key = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: (1).to_bytes(32, "big"), -3: (1).to_bytes(32, "big")}
        )
        id_length = struct.pack(">H", len(self.credential_id))
        return bytes(16) + id_length + self.credential_id + cose_key


def test_a_public_key_that_can_never_verify_is_refused(api, alice):
    options = begin_registration(api, alice)
    response = complete_registration(api, alice, OffCurveKey().create(options))
    assert response.status_code == 400
    assert response.json()["code"] == "webauthn_invalid"
    assert not Authenticator.objects.filter(type="webauthn").exists()
