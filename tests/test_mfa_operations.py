"""Operating second factors: the support desk's reset, the admin's list, the cleanup of
login tickets, and the system checks of the MFA settings."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.cache import caches
from django.core.checks.registry import registry
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.exceptions import NotFound

from tessera import signals
from tessera.checks import check_mfa
from tessera.models import Authenticator, AuthenticatorType, LoginTicket, RevokeReason, Session
from tessera.services.mfa import encryption, factors, totp
from tessera.services.sessions import open_session

from .conftest import PASSWORD, create_user, failing, get_protected, post_login, receiving
from .mfa_support import TOTP_URL, enable_totp, mfa_ticket, second_factor

pytestmark = pytest.mark.django_db


# --- tessera_reset_mfa --------------------------------------------------------------------


def test_reset_removes_every_factor_and_session(api, alice_mfa, user):
    token = open_session(user).token
    pat = open_session(user, kind="pat", is_login=False, amr=()).token
    mfa_ticket(api)
    out = StringIO()
    with receiving(signals.mfa_factor_disabled, "authenticator") as disabled:
        call_command("tessera_reset_mfa", "alice", stdout=out)
    assert "Removed 2 second factor(s) of 'alice' and revoked 2 session(s)." in out.getvalue()
    assert sorted(a.type for a in disabled) == ["recovery_codes", "totp"]
    assert not Authenticator.objects.exists() and not LoginTicket.objects.exists()
    assert set(Session.objects.values_list("revoke_reason", flat=True)) == {RevokeReason.MFA_RESET}
    for credential in (token, pat):
        assert get_protected(api, credential).json()["code"] == "token_revoked"
    assert post_login(api).status_code == 200


def test_reset_of_an_unknown_user_fails(db):
    with pytest.raises(CommandError, match="No user has the login name 'nobody'"):
        call_command("tessera_reset_mfa", "nobody")


def test_reset_commits_with_the_cache_down(api, alice_mfa, user, monkeypatch):
    open_session(user)
    monkeypatch.setattr(caches["default"], "set_many", failing(ConnectionError("down")))
    call_command("tessera_reset_mfa", "alice", stdout=StringIO())
    assert not Session.objects.live().exists()


# --- Factors by id, for the factor types that have several ----------------------------------


def test_a_factor_is_found_by_id_only_for_its_owner(alice_mfa, user):
    bob = create_user("bob", email="bob@example.com")
    bobs = enable_totp(bob)
    alices_app = Authenticator.objects.get(user=user, type="totp")
    assert factors.own_factor(user, str(alices_app.pk)) == alices_app
    assert factors.own_factor(user, alices_app.pk, AuthenticatorType.TOTP) == alices_app
    bobs_app = Authenticator.objects.get(user=bobs.user, type="totp")
    for factor_id, factor_type in [
        (str(bobs_app.pk), None),
        (str(alices_app.pk), AuthenticatorType.WEBAUTHN),
        ("not-a-uuid", None),
        (str(uuid.uuid4()), None),
    ]:
        with pytest.raises(NotFound):
            factors.own_factor(user, factor_id, factor_type)


def test_an_unconfirmed_set_up_is_no_factor(user):
    pending = totp.begin(None, user).authenticator
    with pytest.raises(NotFound):
        factors.own_factor(user, str(pending.pk))
    assert not factors.has_factor(user)


# --- The admin --------------------------------------------------------------------------------


def test_the_admin_lists_factors_without_any_secret(client, alice_mfa, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    listing = client.get("/admin/tessera/authenticator/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Authenticator app (TOTP)" in page and "Recovery codes" in page
    stored = Authenticator.objects.get(type="totp")
    assert alice_mfa.secret not in page and stored.secret not in page
    assert f"/admin/tessera/authenticator/{stored.pk}/change/" not in page
    assert client.get("/admin/tessera/authenticator/add/").status_code == 403
    detail = client.get(f"/admin/tessera/authenticator/{stored.pk}/change/")
    assert stored.secret not in detail.content.decode()
    assert client.get(f"/admin/tessera/authenticator/{stored.pk}/delete/").status_code == 403
    searched = client.get("/admin/tessera/authenticator/?q=alice")
    assert "Recovery codes" in searched.content.decode()


def test_the_session_admin_shows_how_a_session_was_authenticated(client, user, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    session = open_session(user, amr=("pwd", "otp", "mfa")).session
    page = client.get(f"/admin/tessera/session/{session.pk}/change/").content.decode()
    assert "otp" in page and "Auth time" in page


# --- Cleanup --------------------------------------------------------------------------------


def test_clearsessions_deletes_used_and_expired_tickets(api, alice_mfa, clock):
    mfa_ticket(api)
    used = mfa_ticket(api)
    second_factor(api, used, code=alice_mfa.next_code())
    clock.advance(minutes=4)
    waiting = LoginTicket.objects.create(
        user=alice_mfa.user,
        digest="w" * 64,
        credential="token",
        expires_at=clock.now + timedelta(minutes=5),
    )
    clock.advance(minutes=2)
    out = StringIO()
    call_command("tessera_clearsessions", stdout=out)
    assert list(LoginTicket.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert "2 used or expired login ticket(s)" in out.getvalue()


# --- Signals of a set-up ------------------------------------------------------------------------


def test_starting_a_set_up_is_signalled(api, user, login):
    token = login()["token"]
    with receiving(signals.mfa_factor_enrolled) as enrolled:
        api.post(TOTP_URL, HTTP_AUTHORIZATION=f"Token {token}")
    assert [(e["user"], e["authenticator"].confirmed_at) for e in enrolled] == [(user, None)]


# --- System checks ---------------------------------------------------------------------------


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_check_mfa_is_registered():
    assert check_mfa in registry.get_checks()


def test_valid_mfa_settings_pass():
    valid = {
        "MFA_ENCRYPTION_KEYS": [Fernet.generate_key(), Fernet.generate_key().decode()],
        "MFA_REQUIRED": ["Admin", "Manager"],
        "MFA_THROTTLE_RATES": {"user": "10/hour"},
    }
    with override_settings(TESSERA=valid):
        assert check_mfa() == []
    with override_settings(TESSERA={"MFA_REQUIRED": "all"}):
        assert check_mfa() == []


@pytest.mark.parametrize("keys", [[], ["not a key"], [Fernet.generate_key(), "short"], [b"x" * 44]])
def test_bad_encryption_keys_are_e060(keys):
    with override_settings(TESSERA={"MFA_ENCRYPTION_KEYS": keys}):
        assert ids(check_mfa()) == ["tessera.E060"]


@pytest.mark.parametrize("required", ["Admin", "", [], ["Admin", ""], [3]])
def test_a_bad_policy_is_e061(required):
    with override_settings(TESSERA={"MFA_REQUIRED": required}):
        assert ids(check_mfa()) == ["tessera.E061"]


@pytest.mark.parametrize("rates", [{"ip": "5/min"}, {"user": "lots"}])
def test_bad_mfa_throttles_are_e062(rates):
    with override_settings(TESSERA={"MFA_THROTTLE_RATES": rates}):
        assert ids(check_mfa()) == ["tessera.E062"]


def test_an_mfa_throttle_switched_off_is_w060():
    with override_settings(TESSERA={"MFA_THROTTLE_RATES": {"ticket": None}}):
        assert ids(check_mfa()) == ["tessera.W060"]


def test_the_derived_key_is_a_valid_fernet_key():
    Fernet(encryption.default_key())
