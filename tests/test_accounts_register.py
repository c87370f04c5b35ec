"""register/: validators, byte bounds, mass assignment, enumeration, auto-login, e-mails."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings

from tessera import signals
from tessera.models import EmailAddress, EmailVerificationKey, Session

from .accounts_support import mails_to, only_mail_to, snapshot
from .conftest import PASSWORD, REGISTER_URL, auth_header, receiving, register

pytestmark = pytest.mark.django_db
OPEN = {"PREVENT_ENUMERATION": False}


def test_seed_registration_creates_the_user_and_sends_a_verification_mail(api):
    with receiving(signals.user_registered, "user") as received:
        response = register(api)
    assert response.status_code == 201
    assert response.json() == {"detail": "Check your inbox to finish signing up."}
    user = get_user_model().objects.get(username="abc")
    assert user.check_password(PASSWORD)
    assert user.email == "abc@example.com"
    assert received == [user]
    assert EmailAddress.objects.get(user=user).verified_at is None
    assert EmailVerificationKey.objects.get(user=user).purpose == "verify"
    message = only_mail_to("abc@example.com")
    assert message.subject == "Verify your e-mail address"
    assert message.alternatives[0][1] == "text/html"


def test_mass_assignment_is_ignored(api):
    response = register(
        api,
        is_staff=True,
        is_superuser=True,
        is_active=False,
        groups=[1],
        user_permissions=[1],
        date_joined="2000-01-01T00:00:00Z",
        id=999,
    )
    assert response.status_code == 201
    user = get_user_model().objects.get(username="abc")
    assert (user.is_staff, user.is_superuser, user.is_active) == (False, False, True)
    assert not user.groups.exists() and not user.user_permissions.exists()
    assert user.pk != 999 and user.date_joined.year != 2000


@override_settings(TESSERA=OPEN)
def test_without_enumeration_protection_the_user_is_returned(api):
    response = register(api)
    assert response.status_code == 201
    assert response.json()["user"]["username"] == "abc"
    assert "token" not in response.json()


@override_settings(TESSERA={**OPEN, "REGISTER_AUTO_LOGIN": True})
def test_auto_login_returns_a_working_token(api):
    response = register(api, device_name="Signup phone")
    assert response.status_code == 201
    token = response.json()["token"]
    session = Session.objects.get()
    assert (session.kind, session.device_name) == ("token", "Signup phone")
    assert api.get("/api/auth/me/", **auth_header(token)).json()["username"] == "abc"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice"},  # username taken
        {"username": "ALICE"},  # the same name in another case
        {"email": "alice@example.com"},  # address taken
        {"email": "ALICE@EXAMPLE.COM"},
    ],
)
def test_taken_identity_answers_like_a_new_one_and_mails_the_owner(api, user, body, hasher_calls):
    before = snapshot()
    taken = register(api, **body)
    assert hasher_calls.call_count == 1  # the same hasher work as a real sign-up
    assert mails_to("abc@example.com") == []
    assert only_mail_to("alice@example.com").subject == "You already have an account"
    assert snapshot() == before
    hasher_calls.reset_mock()
    fresh = register(api, username="newbie", email="newbie@example.com")
    assert hasher_calls.call_count == 1
    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())
    assert sorted(taken.headers) == sorted(fresh.headers)


def test_address_claimed_by_a_pending_record_counts_as_taken(api, user):
    EmailAddress.objects.create(user=user, email="Pending@Example.com")
    before = snapshot()
    assert register(api, email="pending@example.com").status_code == 201
    assert snapshot() == before


@override_settings(TESSERA=OPEN)
@pytest.mark.parametrize("field,value", [("username", "alice"), ("email", "Alice@example.com")])
def test_taken_identity_is_a_field_error_without_enumeration_protection(api, user, field, value):
    before = snapshot()
    response = register(api, **{field: value})
    assert response.status_code == 400
    assert response.json()["fields"][field][0]["code"] == "unique"
    assert snapshot() == before
    assert mail.outbox == []


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"password": "short"}, "password", "password_too_short"),
        ({"password": "é" * 3}, "password", "password_too_short"),  # 6 bytes, 3 characters
        ({"password": "x" * 4097}, "password", "password_too_long"),
        ({"password": "é" * 2049}, "password", "password_too_long"),  # 4098 bytes
        ({"password": "password123"}, "password", "password_too_common"),
        ({"password": "84736251907"}, "password", "password_entirely_numeric"),
        ({"password": "abc@example.com"}, "password", "password_too_similar"),
        ({"password": None}, "password", "null"),
        ({"email": "not-an-address"}, "email", "invalid"),
        ({"email": ""}, "email", "blank"),
        ({"username": "bad name!"}, "username", "invalid"),
        ({"username": "x" * 151}, "username", "max_length"),
        ({"username": ""}, "username", "blank"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code(api, body, field, code):
    before = snapshot()
    response = register(api, **body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert code in [e["code"] for e in response.json()["fields"][field]]
    assert snapshot() == before
    assert mail.outbox == []


@pytest.mark.parametrize("missing", ["username", "email", "password"])
def test_missing_fields_are_required(api, missing):
    payload = {"username": "abc", "password": PASSWORD, "email": "abc@example.com"}
    del payload[missing]
    response = api.post(REGISTER_URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["fields"][missing][0]["code"] == "required"
    assert not get_user_model().objects.exists()


def test_overlong_password_is_refused_before_validators_and_hasher(api, hasher_calls):
    with mock.patch("django.contrib.auth.password_validation.validate_password") as validators:
        response = register(api, password="p" * 60000)
    assert response.status_code == 400
    assert validators.call_count == 0 and hasher_calls.call_count == 0


def test_oversized_body_is_413(api):
    response = register(api, password="p" * 70000)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_json_that_is_not_an_object_is_400(api):
    response = api.post(REGISTER_URL, "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_register_is_throttled_per_ip_before_the_costly_work(api, hasher_calls, backend, settings):
    settings.TESSERA = {
        "ACCOUNT_THROTTLE_RATES": {"register_ip": "2/hour"},
        "THROTTLE_BACKEND": backend,
    }
    assert register(api, username="one", email="one@example.com").status_code == 201
    assert register(api, username="two", email="two@example.com").status_code == 201
    hasher_calls.reset_mock()
    response = register(api, username="three", email="three@example.com")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert hasher_calls.call_count == 0
    assert not get_user_model().objects.filter(username="three").exists()


@override_settings(TESSERA={"EMAIL_VERIFICATION": "none"})
def test_no_verification_mail_when_verification_is_off(api):
    assert register(api).status_code == 201
    assert mail.outbox == []
    assert not EmailVerificationKey.objects.exists()


@override_settings(EMAIL_BACKEND="tests.test_accounts_register.BrokenBackend")
def test_a_failing_mail_backend_changes_nothing_in_the_answer(api, caplog):
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = register(api)
    assert response.status_code == 201
    assert response.json() == {"detail": "Check your inbox to finish signing up."}
    assert "'verify_email' e-mail failed" in caplog.text
    assert "SMTP down" in caplog.text  # the traceback is logged, never answered


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP down")


def test_projects_can_override_the_email_templates(api, tmp_path, settings):
    folder = tmp_path / "tessera" / "email"
    folder.mkdir(parents=True)
    (folder / "verify_email_subject.txt").write_text("Welcome to {{ site_name }}!\n")
    (folder / "verify_email.txt").write_text("Click {{ url }} & enjoy")
    (folder / "verify_email.html").write_text("<a href='{{ url }}'>{{ site_name }}</a>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    settings.TESSERA = {"SITE_NAME": "Tom & Jerry"}
    assert register(api).status_code == 201
    message = only_mail_to("abc@example.com")
    assert message.subject == "Welcome to Tom &amp; Jerry!"  # autoescape is the template's call
    assert message.body.startswith("Click http://localhost:3000/verify-email/")
    assert message.body.endswith("& enjoy")
    assert "Tom &amp; Jerry" in message.alternatives[0][0]


def test_default_subjects_are_not_html_escaped(api, settings):
    settings.TESSERA = {"SITE_NAME": "Tom & Jerry"}
    assert register(api).status_code == 201
    assert only_mail_to("abc@example.com").subject == "[Tom & Jerry] Verify your e-mail address"


@pytest.mark.parametrize("username", ["ext-0123456789abcdef01234567", "EXT-me", "ｅｘｔ-me"])
def test_the_prefix_of_generated_names_is_reserved(api, username):
    response = register(api, username=username)
    assert response.status_code == 400, response.content
    assert response.json()["fields"]["username"][0]["code"] == "reserved"
    assert not get_user_model().objects.exists()
    assert not mail.outbox


@pytest.mark.parametrize("username", ["ext", "ext_me", "next-me", "text-me"])
def test_names_near_the_reserved_prefix_are_free(api, username):
    assert register(api, username=username).status_code == 201
