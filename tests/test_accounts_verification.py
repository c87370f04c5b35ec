"""E-mail verification: modes, the login rule, one-time expiring keys, resend, change."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from tessera import signals
from tessera.models import EmailAddress, EmailVerificationKey, Session

from .accounts_support import (
    mails_to,
    only_mail_to,
    snapshot,
    verify_key,
)
from .conftest import PASSWORD, post_login, receiving, register

pytestmark = pytest.mark.django_db
MANDATORY = {"EMAIL_VERIFICATION": "mandatory"}
VERIFY = "/api/auth/email/verify/"
RESEND = "/api/auth/email/verify/resend/"


def sign_up(api, username="abc", email="abc@example.com"):
    assert register(api, username=username, email=email).status_code == 201
    return get_user_model().objects.get(username=username)


def test_key_is_256_bits_and_stored_as_a_digest_only(api):
    user = sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    assert len(key) == 43  # 32 bytes, URL-safe base64
    record = EmailVerificationKey.objects.get(user=user)
    assert key not in record.key_digest and len(record.key_digest) == 64
    assert record.expires_at - record.created_at == timedelta(days=3)


def test_verifying_marks_the_address_and_fires_the_signal(api):
    user = sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    with receiving(signals.email_verified, "email") as received:
        response = api.post(VERIFY, {"key": key}, format="json")
    assert response.status_code == 204
    assert EmailAddress.objects.get(user=user).verified_at is not None
    assert received == ["abc@example.com"]


def test_a_key_works_once(api):
    sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    assert api.post(VERIFY, {"key": key}, format="json").status_code == 204
    before = snapshot()
    again = api.post(VERIFY, {"key": key}, format="json")
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_key"
    assert snapshot() == before


def test_an_expired_key_is_refused(api):
    user = sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    later = timezone.now() + timedelta(days=3, seconds=1)
    before = snapshot()
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = api.post(VERIFY, {"key": key}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_key"
    assert snapshot() == before
    assert EmailAddress.objects.get(user=user).verified_at is None


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({}, 400, "invalid"),
        ({"key": ""}, 400, "invalid"),
        ({"key": "x" * 65}, 400, "invalid"),
        ({"key": "A" * 43}, 400, "invalid_key"),  # well formed, unknown
        ({"key": "bad key!"}, 400, "invalid_key"),
        ({"key": ["list"]}, 400, "invalid"),
    ],
)
def test_bad_keys(api, body, status, code):
    sign_up(api)
    before = snapshot()
    response = api.post(VERIFY, body, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert snapshot() == before


def test_a_key_for_an_address_the_account_no_longer_has_is_refused(api):
    user = sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    user.email = "other@example.com"
    user.save()
    response = api.post(VERIFY, {"key": key}, format="json")
    assert response.json()["code"] == "invalid_key"
    assert EmailAddress.objects.get(user=user).verified_at is None


def test_an_inactive_users_key_is_refused(api):
    user = sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    user.is_active = False
    user.save()
    # Deactivation voided the key, so it stays refused even if the account comes back.
    assert EmailVerificationKey.objects.get().used_at is not None
    assert api.post(VERIFY, {"key": key}, format="json").json()["code"] == "invalid_key"
    user.is_active = True
    user.save()
    assert api.post(VERIFY, {"key": key}, format="json").json()["code"] == "invalid_key"


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"verify_ip": "2/hour"}})
def test_verify_is_throttled_per_ip(api):
    for _ in range(2):
        assert api.post(VERIFY, {"key": "A" * 43}, format="json").status_code == 400
    response = api.post(VERIFY, {"key": "A" * 43}, format="json")
    assert response.status_code == 429 and "Retry-After" in response


# The login rule


@override_settings(TESSERA=MANDATORY)
def test_mandatory_refuses_login_until_verified_with_a_distinct_code(api):
    sign_up(api)
    refused = post_login(api, "abc")
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "email_not_verified",
        "detail": "Verify your e-mail address before logging in.",
    }
    assert not Session.objects.exists()
    key = verify_key(only_mail_to("abc@example.com"))
    assert api.post(VERIFY, {"key": key}, format="json").status_code == 204
    assert post_login(api, "abc").status_code == 200


@override_settings(TESSERA=MANDATORY)
def test_mandatory_unverified_with_a_wrong_password_looks_like_any_failure(
    api, user, inactive_user, unusable_user, hasher_calls
):
    unverified = sign_up(api)
    EmailAddress.objects.create(user=user, email=user.email, verified_at=timezone.now())
    cases = [
        ("nobody", PASSWORD),  # unknown user
        ("alice", "wrong-password"),  # wrong password
        (inactive_user.username, PASSWORD),  # inactive user
        (unusable_user.username, PASSWORD),  # unusable password
        (unverified.username, "wrong-password"),  # unverified, wrong password
    ]
    answers = []
    for username, password in cases:
        hasher_calls.reset_mock()
        response = post_login(api, username, password)
        assert hasher_calls.call_count == 1, username
        answers.append((response.status_code, response.json(), sorted(response.headers.items())))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 401 and answers[0][1]["code"] == "invalid_credentials"
    hasher_calls.reset_mock()
    right = post_login(api, unverified.username)
    assert (right.status_code, right.json()["code"]) == (403, "email_not_verified")
    assert hasher_calls.call_count == 1


@override_settings(TESSERA=MANDATORY)
def test_mandatory_refuses_users_created_outside_registration(api, user):
    assert post_login(api).json()["code"] == "email_not_verified"


def test_optional_lets_unverified_users_log_in(api):
    sign_up(api)
    assert post_login(api, "abc").status_code == 200


# Resend


def test_resend_always_answers_202_and_mails_only_unverified_accounts(api, user):
    sign_up(api)
    mail.outbox.clear()
    answers = [
        api.post(RESEND, {"email": email}, format="json")
        for email in ("abc@example.com", "nobody@example.com", "alice@example.com")
    ]
    assert {(a.status_code, a.content) for a in answers} == {(202, answers[0].content)}
    assert len(mails_to("abc@example.com")) == 1
    # alice was created outside registration: unverified, so she may verify now.
    assert len(mails_to("alice@example.com")) == 1
    assert len(mail.outbox) == 2


def test_resend_skips_verified_accounts(api):
    sign_up(api)
    key = verify_key(only_mail_to("abc@example.com"))
    api.post(VERIFY, {"key": key}, format="json")
    mail.outbox.clear()
    assert api.post(RESEND, {"email": "abc@example.com"}, format="json").status_code == 202
    assert mail.outbox == []


def test_resent_key_works_and_retires_the_older_one(api):
    sign_up(api)
    first = verify_key(only_mail_to("abc@example.com"))
    mail.outbox.clear()
    api.post(RESEND, {"email": "abc@example.com"}, format="json")
    second = verify_key(only_mail_to("abc@example.com"))
    assert api.post(VERIFY, {"key": second}, format="json").status_code == 204
    assert api.post(VERIFY, {"key": first}, format="json").json()["code"] == "invalid_key"


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"resend_email": "2/hour"}})
def test_resend_is_throttled_per_address_whatever_its_case(api):
    sign_up(api)
    for email in ("abc@example.com", "ABC@example.com"):
        assert api.post(RESEND, {"email": email}, format="json").status_code == 202
    response = api.post(RESEND, {"email": "Abc@Example.com"}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # Another address is still served.
    assert api.post(RESEND, {"email": "x@example.com"}, format="json").status_code == 202


@pytest.mark.parametrize("body", [{}, {"email": "nope"}, {"email": "a" * 300 + "@x.io"}])
def test_resend_bad_input(api, body):
    sign_up(api)
    before = snapshot()
    mail.outbox.clear()
    response = api.post(RESEND, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert snapshot() == before and mail.outbox == []
