"""Recovery codes: shown once, stored as keyed digests, each usable once (also under 20
concurrent uses on PostgreSQL), counted, regenerated."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from rest_framework.test import APIRequestFactory

from tessera import signals
from tessera.errors import SecondFactorRefused
from tessera.models import RecoveryCode, Session
from tessera.services import login as login_service
from tessera.services.mfa import recovery_codes, tickets

from .concurrency import run_together
from .conftest import auth_header, create_user, receiving, requires_postgres
from .mfa_support import (
    REAUTHENTICATE_URL,
    RECOVERY_CODES_URL,
    enable_totp,
    mfa_ticket,
    second_factor,
)

pytestmark = pytest.mark.django_db
CODE_FORMAT = re.compile(r"^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$")


@pytest.fixture
def token(api, alice_mfa) -> str:
    return second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]


def test_codes_are_random_and_stored_only_as_digests(alice_mfa):
    codes = alice_mfa.recovery_codes
    assert all(CODE_FORMAT.match(code) for code in codes)
    stored = set(RecoveryCode.objects.values_list("digest", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored


def test_the_count_left_goes_down_with_each_use(api, alice_mfa, token):
    assert api.get(RECOVERY_CODES_URL, **auth_header(token)).json() == {"remaining": 10}
    assert second_factor(api, mfa_ticket(api), code=alice_mfa.recovery_codes[3]).status_code == 200
    assert api.get(RECOVERY_CODES_URL, **auth_header(token)).json() == {"remaining": 9}


def test_another_users_code_is_no_code_of_mine(api, alice_mfa):
    bob = enable_totp(create_user("bob", email="bob@example.com"))
    response = second_factor(api, mfa_ticket(api), code=bob.recovery_codes[0])
    assert response.json()["fields"]["code"][0]["code"] == "invalid_code"
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 0


def test_regenerating_needs_a_recent_authentication(api, alice_mfa, token, clock):
    clock.advance(minutes=6)
    response = api.post(RECOVERY_CODES_URL, **auth_header(token))
    assert (response.status_code, response.json()["code"]) == (403, "reauthentication_required")
    code = alice_mfa.recovery_codes[0]
    body = {"code": code}
    assert (
        api.post(REAUTHENTICATE_URL, body, format="json", **auth_header(token)).status_code == 204
    )
    with receiving(signals.mfa_recovery_codes_generated) as generated:
        fresh = api.post(RECOVERY_CODES_URL, **auth_header(token))
    assert fresh.status_code == 200
    assert len(fresh.json()["codes"]) == 10
    assert len(generated) == 1
    # The old set stopped working; the new one works.
    old = second_factor(api, mfa_ticket(api), code=alice_mfa.recovery_codes[1])
    assert old.json()["fields"]["code"][0]["code"] == "invalid_code"
    new = second_factor(api, mfa_ticket(api), code=fresh.json()["codes"][0])
    assert new.status_code == 200


def test_recovery_codes_need_a_factor(api, user, login):
    token = login()["token"]
    response = api.post(RECOVERY_CODES_URL, **auth_header(token))
    assert (response.status_code, response.json()["code"]) == (409, "mfa_not_enabled")
    assert api.get(RECOVERY_CODES_URL, **auth_header(token)).json() == {"remaining": 0}


def test_a_used_code_says_so(alice_mfa, user):
    code = alice_mfa.recovery_codes[0]
    recovery_codes.use(user, code, "code")
    with pytest.raises(SecondFactorRefused) as refused:
        recovery_codes.use(user, code, "code")
    assert refused.value.get_codes() == {"code": ["code_reused"]}


@pytest.mark.parametrize("code", ["", "short", "o" * 12, "x" * 13, "🔑" * 12])
def test_malformed_codes_are_incorrect(alice_mfa, user, code):
    with pytest.raises(SecondFactorRefused) as refused:
        recovery_codes.use(user, code, "code")
    assert refused.value.get_codes() == {"code": ["invalid_code"]}


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_twenty_concurrent_uses_of_one_code_let_exactly_one_through(user, attempt):
    code = enable_totp(user).recovery_codes[attempt]

    def use(index: int):
        return recovery_codes.use(user, code, "code")

    results = run_together(20, use)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    refusals = [r for r in results if isinstance(r, SecondFactorRefused)]
    assert len(refusals) == 19
    assert {tuple(r.get_codes()["code"]) for r in refusals} == {("code_reused",)}
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
# Room for twenty checks in the lockout's buckets: the race is on the code.
@override_settings(TESSERA={"LOCKOUT_RATES": {"account": "20/min", "account_ip": "20/min"}})
def test_twenty_concurrent_logins_with_one_code_open_one_session(user, attempt):
    factors = enable_totp(user)
    code = factors.recovery_codes[0]
    request = APIRequestFactory().post("/api/auth/mfa/authenticate/")
    issued = [
        tickets.issue(request, user, login_service.LoginIntent(), ["pwd"])[1] for _ in range(20)
    ]

    def finish(index: int):
        return login_service.complete_second_factor(request, issued[index], "code", code)

    results = run_together(20, finish)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, SecondFactorRefused) for r in results if isinstance(r, Exception))
    assert Session.objects.filter(user=user).count() == 1
