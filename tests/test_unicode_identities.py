"""Usernames and addresses are compared in one normal form: NFKC, then case-folded.

Look-alike spellings (a full-width ``ａｄｍｉｎ``, the Kelvin sign in ``\u212aate@…``) must
neither reveal that an account exists (a 503 where a free name answers 201) nor squat the
genuine name; a spelling that is really different (the dotted capital ``İ``) is its own
identity. The same rule holds in the sign-up check, the unique index and the login lookup.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.utils import timezone

from tessera.errors import exception_handler
from tessera.models import EmailAddress, EmailVerificationKey, Session, identity_key
from tessera.services import registration

from .accounts_support import mails_to, only_mail_to, snapshot
from .conftest import PASSWORD, auth_header

pytestmark = pytest.mark.django_db
REGISTER = "/api/auth/register/"
LOGIN = "/api/auth/login/"
OPEN = {"PREVENT_ENUMERATION": False}
FULLWIDTH_ADMIN = "\uff41\uff44\uff4d\uff49\uff4e"  # ａｄｍｉｎ
KELVIN_KATE = "\u212aate@example.com"  # the Kelvin sign, NFKC-equal to K
DOTTED_IVAN = "\u0130van@example.com"  # İ: case-folds to i + combining dot, not to i


def register(api, **body):
    payload = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD, **body}
    return api.post(REGISTER, payload, format="json")


def log_in(api, identifier, password=PASSWORD):
    return api.post(LOGIN, {"username": identifier, "password": password}, format="json")


def sign_up(username: str, email: str):
    """An account as Tessera's sign-up leaves it: the user and its address record."""
    user = get_user_model().objects.create_user(username, email, PASSWORD)
    EmailAddress.objects.create(user=user, email=email)
    return user


@pytest.fixture
def admin():
    return sign_up("admin", "admin@example.com")


@pytest.fixture
def kate():
    return sign_up("kate", "kate@example.com")


@pytest.fixture
def ivan():
    return sign_up("ivan", "ivan@example.com")


def test_the_key_is_nfkc_then_case_folded():
    assert identity_key(FULLWIDTH_ADMIN) == "admin"
    assert identity_key("ADMIN") == "admin"
    assert identity_key(KELVIN_KATE) == "kate@example.com"
    assert identity_key("Straße@Example.com") == "strasse@example.com"
    assert identity_key(DOTTED_IVAN) == "i\u0307van@example.com" != identity_key("ivan@example.com")


# Sign-up: a look-alike of a taken identity is taken


@pytest.mark.parametrize(
    "body,owner",
    [
        ({"username": FULLWIDTH_ADMIN}, "admin@example.com"),
        ({"username": "\uff21\uff24\uff2d\uff29\uff2e"}, "admin@example.com"),  # ＡＤＭＩＮ
        ({"email": KELVIN_KATE}, "kate@example.com"),
        ({"email": "\u212aATE@EXAMPLE.COM"}, "kate@example.com"),
    ],
    ids=["fullwidth-username", "fullwidth-upper-username", "kelvin-email", "kelvin-upper-email"],
)
def test_a_look_alike_of_a_taken_identity_answers_like_a_new_one(
    api, admin, kate, hasher_calls, body, owner
):
    before = snapshot()
    taken = register(api, **body)
    assert hasher_calls.call_count == 1
    assert snapshot() == before
    assert only_mail_to(owner).subject == "You already have an account"
    hasher_calls.reset_mock()
    fresh = register(api, username="fresh", email="fresh@example.com")
    assert hasher_calls.call_count == 1
    assert (
        (taken.status_code, taken.json())
        == (fresh.status_code, fresh.json())
        == (201, {"detail": "Check your inbox to finish signing up."})
    )
    assert sorted(taken.headers) == sorted(fresh.headers)


@override_settings(TESSERA=OPEN)
@pytest.mark.parametrize(
    "field,value",
    [("username", FULLWIDTH_ADMIN), ("email", KELVIN_KATE), ("email", "\u212aATE@example.com")],
)
def test_a_look_alike_of_a_taken_identity_is_a_field_error_without_protection(
    api, admin, kate, field, value
):
    before = snapshot()
    response = register(api, **{field: value})
    assert response.status_code == 400
    assert response.json()["fields"][field][0]["code"] == "unique"
    assert snapshot() == before
    assert mail.outbox == []


@override_settings(TESSERA=OPEN)
def test_a_fullwidth_name_signs_up_under_its_normal_form_and_then_is_taken(api):
    response = register(api, username=FULLWIDTH_ADMIN)
    assert response.status_code == 201
    assert response.json()["user"]["username"] == "admin"
    for spelling in ("admin", "Admin", FULLWIDTH_ADMIN):
        again = register(api, username=spelling, email=f"{len(spelling)}x@example.com")
        assert again.status_code == 400, spelling
        assert again.json()["fields"]["username"][0]["code"] == "unique"


@pytest.mark.parametrize("protected", [True, False])
def test_a_kelvin_sign_up_stores_the_genuine_address_and_cannot_squat_it(api, protected):
    """The squatter's account is created under the NFKC address: its verification mail goes
    to the genuine mailbox, and the genuine owner's sign-up is an ordinary duplicate whose
    "account exists" mail (and any password reset) reaches that same mailbox."""
    with override_settings(TESSERA={"PREVENT_ENUMERATION": protected}):
        first = register(api, username="squatter", email=KELVIN_KATE)
        assert first.status_code == 201
        squatter = get_user_model().objects.get(username="squatter")
        assert squatter.email == "Kate@example.com"
        assert only_mail_to("Kate@example.com").subject == "Verify your e-mail address"
        mail.outbox.clear()
        before = snapshot()
        genuine = register(api, username="kate", email="kate@example.com")
        assert snapshot() == before
    if protected:
        assert genuine.status_code == 201
        assert only_mail_to("Kate@example.com").subject == "You already have an account"
    else:
        assert genuine.status_code == 400
        assert genuine.json()["fields"]["email"][0]["code"] == "unique"
    mail.outbox.clear()
    reset = api.post("/api/auth/password/reset/", {"email": "kate@example.com"}, format="json")
    assert reset.status_code == 202
    assert only_mail_to("Kate@example.com").subject.startswith("Reset")


@pytest.mark.parametrize("protected", [True, False])
def test_a_dotted_capital_i_is_its_own_address(api, ivan, protected):
    with override_settings(TESSERA={"PREVENT_ENUMERATION": protected}):
        response = register(api, username="other", email=DOTTED_IVAN)
    assert response.status_code == 201
    other = get_user_model().objects.get(username="other")
    assert other.email == DOTTED_IVAN
    assert EmailAddress.objects.get(user=other).email == DOTTED_IVAN
    assert mails_to("ivan@example.com") == []


@override_settings(TESSERA=OPEN)
def test_the_ascii_address_signs_up_after_a_dotted_capital_i(api):
    assert register(api, username="first", email=DOTTED_IVAN).status_code == 201
    response = register(api, username="ivan", email="ivan@example.com")
    assert response.status_code == 201
    assert response.json()["user"]["email"] == "ivan@example.com"


@override_settings(TESSERA=OPEN)
def test_an_address_whose_normal_form_is_too_long_is_refused(api):
    # Valid as typed (110 characters: the domain allows the ligature ﬃ), 310 once NFKC
    # spells each ﬃ out as "ffi": longer than an address may be stored.
    response = register(api, email="a@" + ("\ufb03" * 20 + ".") * 5 + "com")
    assert response.status_code == 400
    assert response.json()["fields"]["email"][0]["code"] == "max_length"
    assert not get_user_model().objects.filter(username="newbie").exists()


@override_settings(TESSERA=OPEN)
def test_a_username_whose_normal_form_is_too_long_is_refused(api):
    response = register(api, username="\ufb03" * 60)  # 60 characters typed, 180 stored
    assert response.status_code == 400
    assert response.json()["fields"]["username"][0]["code"] == "max_length"
    assert not get_user_model().objects.filter(email="newbie@example.com").exists()


@pytest.mark.parametrize("protected", [True, False])
def test_an_address_change_to_a_look_alike_of_a_taken_address_is_refused(
    api, kate, user, login, protected
):
    token = login()["token"]
    body = {"email": KELVIN_KATE, "current_password": PASSWORD}
    with override_settings(TESSERA={"PREVENT_ENUMERATION": protected}):
        response = api.patch("/api/auth/me/", body, format="json", **auth_header(token))
    if protected:
        assert response.status_code == 200
        assert only_mail_to("Kate@example.com").subject == "You already have an account"
    else:
        assert response.status_code == 400
        assert response.json()["fields"]["email"][0]["code"] == "unique"
    assert not EmailVerificationKey.objects.exists()


# The unique index holds the same rule, on every database


def test_the_unique_index_refuses_a_look_alike_address(kate):
    squatter = get_user_model().objects.create_user("squatter", "x@example.com", PASSWORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailAddress.objects.create(user=squatter, email=KELVIN_KATE)
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailAddress.objects.create(user=squatter, email="KATE@example.com")


def test_the_unique_index_accepts_a_different_address(ivan):
    other = get_user_model().objects.create_user("other", "x@example.com", PASSWORD)
    EmailAddress.objects.create(user=other, email=DOTTED_IVAN)
    assert EmailAddress.objects.get(user=other).key == identity_key(DOTTED_IVAN)


def test_the_key_follows_the_address_when_it_changes(kate):
    record = EmailAddress.objects.get(user=kate)
    EmailAddress.objects.update_or_create(user=kate, defaults={"email": "Katie@Example.com"})
    record.refresh_from_db()
    assert record.key == "katie@example.com"


# A database integrity error is a conflict, never "service unavailable"


def _racing_sign_up(competitor: dict):
    """Make the duplicate check miss a competitor that commits just before our insert."""
    real = registration._account_holding
    calls = []

    def holding(fields):
        calls.append(fields)
        if len(calls) == 1:
            get_user_model().objects.create_user(**competitor, password=PASSWORD)
            return None
        return real(fields)

    return mock.patch.object(registration, "_account_holding", side_effect=holding)


@pytest.mark.parametrize("protected", [True, False])
def test_a_concurrent_duplicate_answers_like_any_duplicate(api, protected, hasher_calls):
    with (
        override_settings(TESSERA={"PREVENT_ENUMERATION": protected}),
        _racing_sign_up({"username": "admin", "email": "admin@example.com"}),
    ):
        response = register(api, username=FULLWIDTH_ADMIN)
    if protected:
        assert response.status_code == 201
        assert response.json() == {"detail": "Check your inbox to finish signing up."}
        assert only_mail_to("admin@example.com").subject == "You already have an account"
    else:
        assert response.status_code == 400
        assert response.json()["fields"]["username"][0]["code"] == "unique"
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert not get_user_model().objects.filter(email="newbie@example.com").exists()


@contextmanager
def _sign_up_loses_to_a_hidden_holder():
    """The insert hits a unique value the duplicate check does not look at."""
    with (
        mock.patch.object(registration, "_account_holding", return_value=None),
        mock.patch.object(
            registration, "_create_account", side_effect=IntegrityError("unique violation")
        ),
    ):
        yield


def test_an_integrity_error_with_no_visible_holder_hides_behind_the_one_answer(api):
    with _sign_up_loses_to_a_hidden_holder():
        response = register(api)
    assert response.status_code == 201
    assert response.json() == {"detail": "Check your inbox to finish signing up."}
    assert mail.outbox == []


@override_settings(TESSERA=OPEN)
def test_an_integrity_error_that_escapes_is_a_409_conflict(api):
    with _sign_up_loses_to_a_hidden_holder():
        response = register(api)
    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "detail": "The request conflicts with data stored meanwhile. Try again.",
    }
    assert "Retry-After" not in response


def test_the_handler_maps_integrity_errors_to_409_and_outages_to_503():
    assert exception_handler(IntegrityError("duplicate key"), {}).status_code == 409
    outage = exception_handler(OperationalError("connection refused"), {})
    assert outage.status_code == 503 and outage["Retry-After"]


# Login finds the account by the same key


@pytest.mark.parametrize(
    "identifier", ["admin", "ADMIN", FULLWIDTH_ADMIN, "admin@example.com", "ADMIN@Example.COM"]
)
def test_login_finds_the_account_by_its_normal_form(api, admin, hasher_calls, identifier):
    response = log_in(api, identifier)
    assert response.status_code == 200, response.content
    assert response.json()["user"]["username"] == "admin"
    assert hasher_calls.call_count == 1


@pytest.mark.parametrize("identifier", [KELVIN_KATE, "\u212aATE@EXAMPLE.COM"])
def test_login_by_a_kelvin_spelling_of_the_address(api, kate, hasher_calls, identifier):
    response = log_in(api, identifier)
    assert response.status_code == 200, response.content
    assert response.json()["user"]["username"] == "kate"
    assert hasher_calls.call_count == 1


def test_login_keeps_a_dotted_capital_i_apart_from_the_ascii_address(api, ivan, hasher_calls):
    other = sign_up("other", DOTTED_IVAN)
    other.set_password("another-long-passphrase")
    other.save()
    assert log_in(api, DOTTED_IVAN, "another-long-passphrase").json()["user"]["username"] == (
        "other"
    )
    assert log_in(api, "ivan@example.com").json()["user"]["username"] == "ivan"
    hasher_calls.reset_mock()
    response = log_in(api, DOTTED_IVAN)  # ivan's password does not open the other account
    assert response.status_code == 401
    assert hasher_calls.call_count == 1


def test_an_exact_name_wins_over_a_case_variant(api, django_user_model, hasher_calls):
    django_user_model.objects.create_user("Alice", "a1@example.com", "first-long-passphrase")
    django_user_model.objects.create_user("alice", "a2@example.com", PASSWORD)
    assert log_in(api, "alice").json()["user"]["email"] == "a2@example.com"
    assert log_in(api, "Alice", "first-long-passphrase").json()["user"]["email"] == (
        "a1@example.com"
    )
    hasher_calls.reset_mock()
    ambiguous = log_in(api, "ALICE")  # two accounts share the key: neither is guessed
    assert ambiguous.status_code == 401
    assert hasher_calls.call_count == 1


def test_look_alike_spellings_share_one_lockout_bucket(api, admin):
    rates = {"ip": None, "account_ip": None, "account": "3/min"}
    with override_settings(TESSERA={"LOCKOUT_RATES": rates}):
        for spelling in ("admin", "ADMIN", FULLWIDTH_ADMIN):
            assert log_in(api, spelling, "wrong").status_code == 401
        response = log_in(api, "admin")
    assert response.status_code == 429
    assert not Session.objects.exists()


# The migration that introduced the key


BEFORE_KEY = [("tessera", "0005_pending_cache_invalidation")]
WITH_KEY = [("tessera", "0006_email_address_key")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_keys_and_keeps_one_claim_per_key():
    """Rows the old LOWER(email) index let through as different are one claim now: the
    verified row keeps it (else the oldest) and the others are dropped."""
    old = _migrate(BEFORE_KEY)
    try:
        user_model = old.get_model(settings.AUTH_USER_MODEL)
        records = old.get_model("tessera", "EmailAddress").objects

        def claim(name: str, email: str, verified: bool = False) -> int:
            user = user_model.objects.create(username=name, email=email, password="!")
            record = records.create(
                user_id=user.pk, email=email, verified_at=timezone.now() if verified else None
            )
            return record.pk

        plain = claim("plain", "Plain@Example.com")
        sharp = claim("sharp", "straße@example.com")
        ascii_ss = claim("ascii_ss", "STRASSE@example.com", verified=True)
        fullwidth = claim("fullwidth", "x@\uff45xample.com")  # full-width e
        ascii_e = claim("ascii_e", "x@example.com")
        new = _migrate(WITH_KEY)
        rows = dict(new.get_model("tessera", "EmailAddress").objects.values_list("pk", "key"))
        assert rows == {
            plain: "plain@example.com",
            ascii_ss: "strasse@example.com",  # verified: keeps the claim over the older row
            fullwidth: "x@example.com",  # both unverified: the older row keeps it
        }
        assert {sharp, ascii_e}.isdisjoint(rows)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
