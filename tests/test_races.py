"""Concurrency properties, checked on database state against real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import override_settings
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from tessera.errors import InvalidCredentials, LockedOut, SessionLimitReached
from tessera.models import RateBucket, RefreshToken, Session
from tessera.services import buckets, throttling
from tessera.services import jwt as jwt_service
from tessera.services import login as login_service
from tessera.services.sessions import open_session

from .concurrency import run_together
from .conftest import PASSWORD, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
REPEAT = 3


@pytest.mark.parametrize("attempt", range(REPEAT))
@override_settings(TESSERA={"TOKEN_LIMIT_PER_USER": 3})
def test_concurrent_logins_never_exceed_the_limit_when_rejecting(user, attempt):
    results = run_together(20, lambda i: open_session(user, device_name=f"d{i}"))
    assert Session.objects.live().filter(user=user).count() == 3
    assert sum(isinstance(r, SessionLimitReached) for r in results) == 17


@pytest.mark.parametrize("attempt", range(REPEAT))
@override_settings(
    TESSERA={"TOKEN_LIMIT_PER_USER": 3, "TOKEN_LIMIT_POLICY": "revoke_least_recently_used"}
)
def test_concurrent_logins_leave_exactly_the_limit_when_displacing(user, attempt):
    results = run_together(20, lambda i: open_session(user, device_name=f"d{i}"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert Session.objects.live().filter(user=user).count() == 3
    assert Session.objects.filter(user=user, revoke_reason="limit").count() == 17


@pytest.mark.parametrize("backend", ["cache", "database"])
@pytest.mark.parametrize("attempt", range(REPEAT))
def test_fifty_concurrent_attempts_against_a_limit_of_five_let_five_through(backend, attempt):
    def attempt_login(index: int):
        throttling.hit("race", f"target-{attempt}", "5/hour")
        return "allowed"

    with override_settings(TESSERA={"THROTTLE_BACKEND": backend}):
        results = run_together(50, attempt_login)
    assert results.count("allowed") == 5
    assert sum(isinstance(r, Throttled) for r in results) == 45
    if backend == "database":
        assert RateBucket.objects.count() == 1


@pytest.mark.parametrize("backend", ["cache", "database"])
@pytest.mark.parametrize("attempt", range(REPEAT))
def test_fifty_concurrent_wrong_passwords_run_the_hasher_five_times(
    user, monkeypatch, backend, attempt
):
    """Reserve-then-settle: each failure is reserved before the hasher runs, so the
    limit of 5 failures per account admits exactly 5 password checks."""
    # Counted under a lock: a Mock's call_count can lose increments between threads.
    hashes, lock = [], threading.Lock()
    encode = MD5PasswordHasher.encode

    def counting_encode(self, *args, **kwargs):
        with lock:
            hashes.append(1)
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(MD5PasswordHasher, "encode", counting_encode)

    def wrong_password(index: int):
        request = APIRequestFactory().post("/api/auth/login/", REMOTE_ADDR=f"10.1.{index}.1")
        login_service.check_credentials(Request(request), "alice", "wrong")

    rates = {"LOGIN_THROTTLE_RATES": {"ip": None}, "LOCKOUT_RATES": {"ip": None}}
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend, **rates}):
        results = run_together(50, wrong_password)
    assert len(hashes) == 5
    assert sum(isinstance(r, InvalidCredentials) for r in results) == 5
    assert sum(isinstance(r, LockedOut) for r in results) == 45


@pytest.mark.parametrize("backend", ["cache", "database"])
@pytest.mark.parametrize("attempt", range(REPEAT))
def test_concurrent_correct_logins_never_lock_the_account(user, backend, attempt):
    """Checks still in flight fill the bucket for a moment only: the refused attempts
    wait seconds, no strike is recorded, and the next login passes."""

    def correct_password(index: int):
        request = APIRequestFactory().post("/api/auth/login/", REMOTE_ADDR=f"10.2.{index}.1")
        return login_service.check_credentials(Request(request), "alice", PASSWORD)

    rates = {"LOGIN_THROTTLE_RATES": {"ip": None}, "LOCKOUT_RATES": {"ip": None}}
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend, **rates}):
        results = run_together(8, correct_password)
        refused = [r for r in results if isinstance(r, LockedOut)]
        assert all(r.wait <= buckets.IN_FLIGHT_WAIT for r in refused)
        assert len(refused) + sum(r == user for r in results) == 8
        assert login_service.check_credentials(Request(_request()), "alice", PASSWORD) == user


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_twenty_concurrent_refreshes_mint_exactly_one_successor(user, attempt):
    pair = login_service.login(
        _request(), "alice", PASSWORD, login_service.LoginIntent(login_service.JWT)
    )
    results = run_together(20, lambda i: jwt_service.rotate(pair.refresh))
    successes = [r for r in results if isinstance(r, jwt_service.TokenPair)]
    assert len(successes) == 20  # all inside the grace window: the same successor
    assert len({r.refresh for r in successes}) == 1
    assert RefreshToken.objects.filter(parent__isnull=False).count() == 1
    assert RefreshToken.objects.count() == 2


def _request():
    return APIRequestFactory().post("/api/auth/jwt/")
