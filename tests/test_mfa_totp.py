"""TOTP through the API: set up, confirm with a real pyotp code, remove; encrypted at rest;
keys rotated."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from tessera import signals
from tessera.models import Authenticator, AuthenticatorType, RecoveryCode
from tessera.services.mfa import encryption

from .conftest import auth_header, failing, post_login, receiving
from .mfa_support import (
    FACTORS_URL,
    REAUTHENTICATE_URL,
    TOTP_CONFIRM_URL,
    TOTP_URL,
    app_code,
    enable_totp,
    mfa_ticket,
    second_factor,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(api, user, login) -> dict:
    return auth_header(login()["token"])


def begin(api, signed_in) -> dict:
    response = api.post(TOTP_URL, **signed_in)
    assert response.status_code == 200, response.content
    return response.json()


def confirm(api, signed_in, code: str):
    return api.post(TOTP_CONFIRM_URL, {"code": code}, format="json", **signed_in)


def test_set_up_returns_the_secret_its_uri_and_a_qr_code(api, signed_in, user, settings):
    settings.TESSERA = {"SITE_NAME": "Example Shop"}
    body = begin(api, signed_in)
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp", "/Example Shop:alice")
    assert parse_qs(uri.query)["secret"] == [body["secret"]]
    assert parse_qs(uri.query)["issuer"] == ["Example Shop"]
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].endswith("</svg>")
    stored = Authenticator.objects.get(user=user)
    assert stored.confirmed_at is None
    assert body["secret"] not in stored.secret
    assert encryption.decrypt(stored.secret) == body["secret"]


@override_settings(TESSERA={"MFA_TOTP_ISSUER": "Tessera Demo", "SITE_NAME": "ignored"})
def test_the_issuer_is_a_setting(api, signed_in):
    assert "issuer=Tessera%20Demo" in begin(api, signed_in)["otpauth_uri"]


def test_confirming_the_first_factor_returns_recovery_codes_once(api, signed_in, user):
    secret = begin(api, signed_in)["secret"]
    with (
        receiving(signals.mfa_factor_confirmed) as confirmed,
        receiving(signals.mfa_recovery_codes_generated) as generated,
    ):
        response = confirm(api, signed_in, pyotp.TOTP(secret).now())
    assert response.status_code == 200
    body = response.json()
    assert body["factor"]["type"] == "totp"
    assert len(body["recovery_codes"]) == 10
    assert len(set(body["recovery_codes"])) == 10
    assert [c["authenticator"].type for c in confirmed] == ["totp"]
    assert [g["authenticator"].type for g in generated] == ["recovery_codes"]
    listed = api.get(FACTORS_URL, **signed_in).json()
    assert listed["required"] is False
    assert [(f["type"], f["remaining"]) for f in listed["factors"]] == [
        ("totp", None),
        ("recovery_codes", 10),
    ]


def test_a_new_set_up_replaces_one_left_unconfirmed(api, signed_in, user):
    first = begin(api, signed_in)["secret"]
    second = begin(api, signed_in)["secret"]
    assert first != second
    assert Authenticator.objects.filter(user=user).count() == 1
    response = confirm(api, signed_in, pyotp.TOTP(first).now())
    assert response.json()["fields"]["code"][0]["code"] == "invalid_code"
    assert confirm(api, signed_in, pyotp.TOTP(second).now()).status_code == 200


def test_a_confirmed_app_is_not_replaced(api, signed_in, user):
    secret = begin(api, signed_in)["secret"]
    confirm(api, signed_in, pyotp.TOTP(secret).now())
    response = api.post(TOTP_URL, **signed_in)
    assert (response.status_code, response.json()["code"]) == (409, "totp_already_enabled")
    assert encryption.decrypt(Authenticator.objects.get(type="totp").secret) == secret


def test_confirming_with_a_wrong_code_confirms_nothing(api, signed_in, user):
    secret = begin(api, signed_in)["secret"]
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    with receiving(signals.mfa_failed, "code") as failed:
        response = confirm(api, signed_in, wrong)
    assert response.json()["fields"]["code"][0]["code"] == "invalid_code"
    assert failed == ["invalid_code"]
    assert Authenticator.objects.get().confirmed_at is None
    assert post_login(api).status_code == 200


def test_confirming_with_one_step_of_drift(api, signed_in, clock):
    secret = begin(api, signed_in)["secret"]
    assert confirm(api, signed_in, app_code(secret, -1)).status_code == 200


def test_confirming_with_two_steps_of_drift_is_refused(api, signed_in, clock):
    secret = begin(api, signed_in)["secret"]
    assert confirm(api, signed_in, app_code(secret, 2)).status_code == 400


def test_with_the_cache_down_a_confirmation_ending_a_wait_rolls_back(
    api, user, settings, monkeypatch
):
    settings.TESSERA = {"MFA_REQUIRED": "all"}
    signed_in = auth_header(post_login(api).json()["token"])
    secret = begin(api, signed_in)["secret"]
    monkeypatch.setattr(caches["default"], "delete_many", failing(ConnectionError("down")))
    response = confirm(api, signed_in, pyotp.TOTP(secret).now())
    assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")
    assert Authenticator.objects.get().confirmed_at is None
    assert not RecoveryCode.objects.exists()
    monkeypatch.undo()
    assert confirm(api, signed_in, pyotp.TOTP(secret).now()).status_code == 200


def test_confirming_without_a_set_up_is_404(api, signed_in):
    assert confirm(api, signed_in, "123456").status_code == 404


def test_confirmation_codes_are_throttled_per_user(api, signed_in, settings):
    settings.TESSERA = {"MFA_THROTTLE_RATES": {"user": "2/hour"}}
    secret = begin(api, signed_in)["secret"]
    for _ in range(2):
        confirm(api, signed_in, "000001")
    assert confirm(api, signed_in, pyotp.TOTP(secret).now()).status_code == 429


def add_security_key(user) -> Authenticator:
    """A confirmed factor of another type, as a passkey would be stored."""
    return Authenticator.objects.create(
        user=user, type=AuthenticatorType.WEBAUTHN, credential_id="key", confirmed_at=timezone.now()
    )


def test_a_further_factor_comes_without_new_recovery_codes(api, signed_in, user):
    add_security_key(user)
    secret = begin(api, signed_in)["secret"]
    assert confirm(api, signed_in, pyotp.TOTP(secret).now()).json()["recovery_codes"] is None
    assert not RecoveryCode.objects.exists()


def test_once_confirmed_the_next_login_asks_for_it(api, signed_in):
    secret = begin(api, signed_in)["secret"]
    confirm(api, signed_in, pyotp.TOTP(secret).now())
    assert post_login(api).json()["code"] == "mfa_required"


# --- Removing the app ------------------------------------------------------------------


def test_removing_needs_a_recent_authentication(api, alice_mfa, clock):
    ticket = mfa_ticket(api)
    token = second_factor(api, ticket, code=alice_mfa.next_code()).json()["token"]
    clock.advance(minutes=5, seconds=1)
    response = api.delete(TOTP_URL, **auth_header(token))
    assert (response.status_code, response.json()["code"]) == (403, "reauthentication_required")
    reauthenticated = api.post(
        REAUTHENTICATE_URL,
        {"code": app_code(alice_mfa.secret)},
        format="json",
        **auth_header(token),
    )
    assert reauthenticated.status_code == 204
    with receiving(signals.mfa_factor_disabled, "authenticator") as disabled:
        assert api.delete(TOTP_URL, **auth_header(token)).status_code == 204
    # With the last factor its recovery codes go too.
    assert sorted(a.type for a in disabled) == ["recovery_codes", "totp"]
    assert not Authenticator.objects.exists() and not RecoveryCode.objects.exists()
    assert post_login(api).status_code == 200


def test_removing_keeps_recovery_codes_while_another_factor_remains(api, alice_mfa, user):
    add_security_key(user)
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    assert api.delete(TOTP_URL, **auth_header(token)).status_code == 204
    assert sorted(Authenticator.objects.values_list("type", flat=True)) == [
        "recovery_codes",
        "webauthn",
    ]


def test_removing_an_unconfirmed_set_up(api, signed_in, user):
    begin(api, signed_in)
    assert api.delete(TOTP_URL, **signed_in).status_code == 204
    assert not Authenticator.objects.exists()


def test_removing_nothing_is_404(api, signed_in):
    assert api.delete(TOTP_URL, **signed_in).status_code == 404


def test_a_personal_access_token_cannot_manage_factors(api, signed_in):
    pat = api.post("/api/auth/tokens/", {"name": "ci", "scopes": []}, format="json", **signed_in)
    for method, url in [("get", FACTORS_URL), ("post", TOTP_URL), ("delete", TOTP_URL)]:
        response = getattr(api, method)(url, **auth_header(pat.json()["token"]))
        assert response.json()["code"] == "personal_access_token_not_allowed"


# --- Encryption at rest and key rotation --------------------------------------------------


def test_without_settings_the_key_is_derived_from_the_signing_key(user, settings):
    stored = encryption.encrypt("JBSWY3DPEHPK3PXP")
    assert Fernet(encryption.default_key()).decrypt(stored.encode()) == b"JBSWY3DPEHPK3PXP"
    settings.TESSERA = {"SIGNING_KEY": "another-signing-key-of-more-than-32-bytes"}
    with pytest.raises(encryption.InvalidToken):
        encryption.decrypt(stored)


def test_keys_rotate_without_logging_anyone_out(api, user, settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TESSERA = {"MFA_ENCRYPTION_KEYS": [old]}
    factors = enable_totp(user)
    # A new key first: it encrypts from now on, the old one still decrypts.
    settings.TESSERA = {"MFA_ENCRYPTION_KEYS": [new, old]}
    assert second_factor(api, mfa_ticket(api), code=factors.next_code()).status_code == 200
    call_command("tessera_reencrypt_mfa_secrets")
    assert "Re-encrypted 1 TOTP secret(s)." in capsys.readouterr().out
    stored = Authenticator.objects.get(type="totp").secret
    assert Fernet(new).decrypt(stored.encode()).decode() == factors.secret
    # Now the old key can go.
    settings.TESSERA = {"MFA_ENCRYPTION_KEYS": [new]}
    assert encryption.decrypt(stored) == factors.secret


def test_moving_from_the_derived_key_to_explicit_keys(user, settings, capsys):
    factors = enable_totp(user)
    call_command("tessera_reencrypt_mfa_secrets", "--print-default-key")
    derived = capsys.readouterr().out.strip()
    new = Fernet.generate_key().decode()
    settings.TESSERA = {"MFA_ENCRYPTION_KEYS": [new, derived]}
    call_command("tessera_reencrypt_mfa_secrets")
    settings.TESSERA = {"MFA_ENCRYPTION_KEYS": [new]}
    assert encryption.decrypt(Authenticator.objects.get(type="totp").secret) == factors.secret


def test_a_secret_no_key_opens_fails_closed_and_is_reported(api, user, settings, caplog):
    factors = enable_totp(user)
    settings.TESSERA = {"MFA_ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    response = second_factor(api, mfa_ticket(api), code=factors.next_code())
    assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")
    assert "opens with none of MFA_ENCRYPTION_KEYS" in caplog.text
    with pytest.raises(CommandError, match="open with none of MFA_ENCRYPTION_KEYS"):
        call_command("tessera_reencrypt_mfa_secrets")
