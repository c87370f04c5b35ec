"""One-time account secrets under concurrency, checked on database state (PostgreSQL)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from tessera.models import EmailAddress, EmailVerificationKey, RevokeReason, Session
from tessera.services.sessions import open_session

from .accounts_support import NEW_PASSWORD, reset_parts, verify_key
from .concurrency import run_together
from .conftest import register, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
REPEAT = 3
WIDE_OPEN = {
    "ACCOUNT_THROTTLE_RATES": {
        k: None
        for k in (
            "register_ip",
            "verify_ip",
            "password_reset_confirm_ip",
            "password_reset_ip",
            "password_reset_email",
        )
    }
}


def post(path: str, body: dict) -> int:
    return APIClient().post(path, body, format="json").status_code


@pytest.mark.parametrize("attempt", range(REPEAT))
@override_settings(TESSERA=WIDE_OPEN)
def test_twenty_concurrent_submits_of_one_key_verify_exactly_once(attempt, mailoutbox):
    assert register(APIClient()).status_code == 201
    key = verify_key(mailoutbox[-1])
    statuses = run_together(20, lambda i: post("/api/auth/email/verify/", {"key": key}))
    assert sorted(statuses) == [204] + [400] * 19
    record = EmailVerificationKey.objects.get()
    assert record.used_at is not None
    assert EmailAddress.objects.get().verified_at == record.used_at


@pytest.mark.parametrize("attempt", range(REPEAT))
@override_settings(TESSERA=WIDE_OPEN)
def test_twenty_concurrent_reset_confirms_succeed_exactly_once(user, attempt, mailoutbox):
    open_session(user)
    assert post("/api/auth/password/reset/", {"email": "alice@example.com"}) == 202
    uid, token = reset_parts(mailoutbox[-1])

    def confirm(index: int) -> int:
        return post(
            "/api/auth/password/reset/confirm/",
            {"uid": uid, "token": token, "new_password": f"{NEW_PASSWORD}-{index}"},
        )

    statuses = run_together(20, confirm)
    assert sorted(statuses) == [204] + [400] * 19
    winner = statuses.index(204)
    user.refresh_from_db()
    assert user.check_password(f"{NEW_PASSWORD}-{winner}")
    assert Session.objects.get().revoke_reason == RevokeReason.PASSWORD_RESET


@pytest.mark.parametrize("attempt", range(REPEAT))
@override_settings(TESSERA=WIDE_OPEN)
def test_concurrent_sign_ups_with_one_address_create_one_account(attempt):
    def sign_up(index: int) -> int:
        return register(APIClient(), username=f"user{index}", email="same@example.com").status_code

    statuses = run_together(20, sign_up)
    assert statuses == [201] * 20  # the same answer for all: nothing to enumerate
    assert get_user_model().objects.filter(email__iexact="same@example.com").count() == 1
    assert EmailAddress.objects.count() == 1
