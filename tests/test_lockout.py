"""Failure lockout: only failed checks count, per IP, account, (account, IP) and known
device; tiered, bounded back-off; known devices pass an account's lock; every password
entry point shares the buckets; unlock by command and admin action."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from tessera import signals
from tessera.errors import LockedOut
from tessera.models import EventType, SecurityEvent, Session, SessionKind
from tessera.services import audit, buckets, lockout

from .conftest import PASSWORD, auth_header, create_user, log_in, post_login, receiving
from .mfa_support import MFA_AUTHENTICATE_URL, mfa_ticket, second_factor

pytestmark = pytest.mark.django_db
A, B = "198.51.100.7", "203.0.113.9"
ADMIN_LOGIN = "/admin/login/"
BROWSABLE_LOGIN = "/api-auth/login/"


@pytest.fixture
def now(monkeypatch):
    """The buckets' clock, moved by hand: ``now[0] += seconds``."""
    moment = [1_800_000_000.0]
    monkeypatch.setattr(buckets.time, "time", lambda: moment[0])
    return moment


def login_from(api, address: str, password: str = PASSWORD, **fields):
    body = {"username": "alice", "password": password, **fields}
    return api.post("/api/auth/login/", body, format="json", REMOTE_ADDR=address)


def fail(api, times: int, address: str = A, username: str = "alice"):
    for _ in range(times):
        response = api.post(
            "/api/auth/login/",
            {"username": username, "password": "wrong"},
            format="json",
            REMOTE_ADDR=address,
        )
        assert response.status_code == 401, response.content


# --- Only failures count ----------------------------------------------------------------


def test_seven_successful_logins_in_a_minute_all_pass(api, user, now):
    statuses = [login_from(api, A).status_code for _ in range(7)]
    assert statuses == [200] * 7


def test_successes_give_their_reservation_back(api, user, now):
    fail(api, 4)
    for _ in range(10):
        assert login_from(api, A).status_code == 200
    fail(api, 1)  # the fifth failure
    refused = login_from(api, A)
    assert refused.status_code == 429
    assert refused.json()["code"] == "locked_out"


@pytest.fixture
def direct(db):
    """For tests calling the lockout outside a request: the audit events it defers are
    written before the test's transaction ends, not by the next test's request."""
    yield
    audit.flush_deferred()


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_a_bucket_full_of_checks_in_flight_refuses_briefly_without_a_strike(
    rf, user, now, backend, direct
):
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend}):
        request = rf.post("/api/auth/login/", REMOTE_ADDR=A)
        in_flight = [lockout.reserve(request, "alice") for _ in range(5)]
        with pytest.raises(LockedOut) as refused:
            lockout.reserve(request, "alice")
        assert refused.value.wait <= buckets.IN_FLIGHT_WAIT
        for reservation in in_flight:
            reservation.refund()
        # No strike was recorded: the next attempts pass, the limit is whole again.
        for _ in range(5):
            lockout.reserve(request, "alice").refund()


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_settled_failures_still_lock_with_the_first_back_off_tier(rf, user, now, backend, direct):
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend}):
        request = rf.post("/api/auth/login/", REMOTE_ADDR=A)
        for _ in range(5):
            lockout.reserve(request, "alice").failed()
        with pytest.raises(LockedOut) as refused:
            lockout.reserve(request, "alice")
        assert refused.value.wait == 300


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_a_hold_never_settled_is_forgotten_and_the_bucket_locks_again(
    rf, user, now, backend, direct
):
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend}):
        request = rf.post("/api/auth/login/", REMOTE_ADDR=A)
        for _ in range(5):
            lockout.reserve(request, "alice")  # a worker died mid-check: never settled
        now[0] += buckets.HOLD_SECONDS
        with pytest.raises(LockedOut) as refused:
            lockout.reserve(request, "alice")
        assert refused.value.wait == 300


def test_a_locked_account_is_refused_whatever_the_password(api, user, hasher_calls, now):
    fail(api, 5)
    hasher_calls.reset_mock()
    for password in ("wrong", PASSWORD):
        response = login_from(api, A, password)
        assert response.status_code == 429
        assert response.json()["code"] == "locked_out"
    assert hasher_calls.call_count == 0
    assert not Session.objects.exists()


def test_unknown_accounts_lock_like_real_ones(api, db, now):
    fail(api, 5, username="nobody")
    response = post_login(api, "nobody", "wrong")
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"


def test_the_per_ip_failure_bucket_spans_accounts(api, user, now):
    with override_settings(TESSERA={"LOCKOUT_RATES": {"ip": "3/hour"}}):
        for name in ("a", "b", "c"):
            fail(api, 1, username=name)
        assert login_from(api, A).status_code == 429
        assert login_from(api, B).status_code == 200


# --- Back-off: tiered, bounded, forgotten ------------------------------------------------


def test_back_off_grows_by_tier_and_is_bounded(api, user, now):
    fail(api, 5)
    waits, failures = [], []
    for _ in range(5):
        refused = login_from(api, A, "wrong")
        assert refused.status_code == 429
        waits.append(int(refused["Retry-After"]))
        now[0] += waits[-1]
        # The lock is over: what has drained of the bucket fits again, then it refuses.
        statuses = [login_from(api, A, "wrong").status_code for _ in range(7)]
        failures.append(statuses.index(429))
    assert waits == [300, 900, 3600, 3600, 3600]
    # Never more than the last tier: at most about 5 failures an hour, for ever.
    assert failures == [1, 5, 5, 5, 5]


def test_strikes_are_forgotten_once_the_bucket_stays_empty(api, user, now):
    fail(api, 5)
    assert login_from(api, A)["Retry-After"] == "300"
    now[0] += 300
    fail(api, 1)
    assert login_from(api, A)["Retry-After"] == "900"
    # Quiet for a whole period (15 minutes) after the lock.
    now[0] += 900 + 15 * 60
    fail(api, 5)
    assert login_from(api, A)["Retry-After"] == "300"


def test_without_back_off_the_rate_alone_refuses(api, user, now):
    with override_settings(TESSERA={"LOCKOUT_BACKOFF": ()}):
        fail(api, 5)
        # 5 per 15 minutes: one more failure fits every 3 minutes.
        assert login_from(api, A)["Retry-After"] == "180"
        now[0] += 180
        assert login_from(api, A).status_code == 200


def test_a_burst_straddling_a_minute_boundary_gets_the_rate_once(api, db, now):
    now[0] = 1_800_000_000.0 - 1  # one second before a minute boundary
    statuses = []
    for index in range(30):
        if index == 15:
            now[0] += 2
        statuses.append(post_login(api, f"user{index}", "x").status_code)
    assert statuses.count(401) <= 20
    assert statuses.count(429) >= 10


# --- Known devices ------------------------------------------------------------------------


def test_a_known_device_passes_the_account_lock(api, user, now):
    device = log_in(api)["device"]
    fail(api, 5, A)
    known = login_from(api, B, device=device)
    assert known.status_code == 200, known.content
    unknown = login_from(api, B)
    assert unknown.status_code == 429
    assert unknown.json()["code"] == "locked_out"


def test_a_known_device_in_the_cookie_passes_too(browser, user, now):
    from .conftest import with_csrf

    headers = with_csrf(browser)
    body = {"username": "alice", "password": PASSWORD}
    first = browser.post("/api/auth/session/login/", body, format="json", **headers)
    assert first.status_code == 200
    fail(browser, 5, A)
    headers = {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
    again = browser.post("/api/auth/session/login/", body, format="json", REMOTE_ADDR=B, **headers)
    assert again.status_code == 200, again.content


def test_the_per_ip_and_per_device_limits_still_apply_to_a_known_device(api, user, now):
    device = log_in(api)["device"]
    fail(api, 5, A)
    # The (account, IP) bucket of the attacker's address is full.
    assert login_from(api, A, device=device).status_code == 429
    # The device's own bucket: ten failures from anywhere.
    for index in range(10):
        assert login_from(api, f"192.0.2.{index}", "wrong", device=device).status_code == 401
    assert login_from(api, "192.0.2.200", device=device).status_code == 429


def test_a_known_device_passes_a_full_ip_bucket_of_its_address(api, user, now):
    device = log_in(api)["device"]
    with override_settings(
        TESSERA={"LOCKOUT_RATES": {"ip": "3/hour"}, "LOGIN_THROTTLE_RATES": {"ip": None}}
    ):
        for name in ("a", "b", "c"):
            fail(api, 1, A, username=name)
        assert login_from(api, A, "wrong").json()["code"] == "locked_out"
        known = login_from(api, A, device=device)
        assert known.status_code == 200, known.content
        unknown = login_from(api, A)
        assert unknown.status_code == 429
        assert unknown.json()["code"] == "locked_out"


def test_a_known_devices_failures_do_not_fill_the_ip_bucket(api, user, other_user, now):
    device = log_in(api)["device"]
    with override_settings(TESSERA={"LOCKOUT_RATES": {"ip": "2/hour", "account_ip": None}}):
        for _ in range(3):
            assert login_from(api, A, "wrong", device=device).status_code == 401
        bob = api.post(
            "/api/auth/login/",
            {"username": "bob", "password": PASSWORD},
            format="json",
            REMOTE_ADDR=A,
        )
        assert bob.status_code == 200, bob.content


def test_the_attempt_throttle_still_applies_to_a_known_device(api, user, now):
    device = log_in(api)["device"]
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "2/min"}}):
        assert login_from(api, A, device=device).status_code == 200
        assert login_from(api, A, device=device).status_code == 200
        assert login_from(api, A, device=device).status_code == 429


def test_another_users_device_does_not_pass(api, user, other_user, now):
    bobs = log_in(api, "bob")["device"]
    fail(api, 5, A)
    assert login_from(api, B, device=bobs).status_code == 429


# --- Second factors -----------------------------------------------------------------------


def test_wrong_second_factor_codes_count_towards_the_account(api, alice_mfa, now):
    # A ticket dies at its fifth wrong code (MFA_MAX_FAILURES): two tickets.
    for wrong_codes in (3, 2):
        ticket = mfa_ticket(api)
        for _ in range(wrong_codes):
            assert second_factor(api, ticket, code="000000").status_code == 400
    response = post_login(api)
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"


def test_a_right_second_factor_gives_its_reservation_back(api, alice_mfa, now):
    fail(api, 4)
    ticket = mfa_ticket(api)
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200
    fail(api, 1)  # the fifth failure: neither the password nor the code counted
    assert post_login(api).status_code == 429


def test_a_known_device_passes_the_account_lock_through_its_second_factor(api, alice_mfa, now):
    ticket = mfa_ticket(api)
    device = second_factor(api, ticket, code=alice_mfa.recovery_codes[0]).json()["device"]
    fail(api, 5, A)
    stopped = login_from(api, B, device=device)
    assert stopped.json()["code"] == "mfa_required"
    body = {"ticket": stopped.json()["ticket"], "code": alice_mfa.next_code(), "device": device}
    done = api.post(MFA_AUTHENTICATE_URL, body, format="json", REMOTE_ADDR=B)
    assert done.status_code == 200, done.content
    assert login_from(api, B).status_code == 429


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_a_right_code_refused_at_the_last_step_does_not_count(
    api, alice_mfa, user, now, settings, backend
):
    settings.TESSERA = {"THROTTLE_BACKEND": backend, "TOKEN_LIMIT_PER_USER": 1}
    Session.objects.create(user=user, kind=SessionKind.TOKEN, token_digest="d" * 64)
    ticket = mfa_ticket(api)
    for _ in range(5):
        response = second_factor(api, ticket, code=alice_mfa.next_code())
        assert response.json()["code"] == "session_limit_reached"
    # The refunds outlived the rollback of the refused logins: nothing counted.
    assert mfa_ticket(api)


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_a_proof_this_server_cannot_check_does_not_count(api, alice_mfa, now, settings, backend):
    settings.TESSERA = {"THROTTLE_BACKEND": backend}
    ticket = mfa_ticket(api)
    for _ in range(5):
        response = second_factor(api, ticket, webauthn={"id": "x"})
        assert response.json()["fields"]["webauthn"][0]["code"] == "unavailable"
    assert mfa_ticket(api)


# --- Signals and the audit trail ----------------------------------------------------------


def test_failures_and_refusals_are_signalled_and_recorded_once(api, user, now):
    with receiving(signals.login_failed) as failed, receiving(signals.locked_out) as locked:
        fail(api, 5, A)
        login_from(api, A)
    assert [(f["identifier"], f["stage"]) for f in failed] == [("alice", "password")] * 5
    assert len(locked) == 1
    assert (locked[0]["scope"], locked[0]["retry_after"]) == ("account", 300)
    events = SecurityEvent.objects.order_by("id")
    assert [e.type for e in events] == [EventType.LOGIN_FAILED] * 5 + [EventType.LOCKED_OUT]
    last = events.last()
    assert last.user == user and last.ip == A
    assert last.detail == {"scope": "account", "retry_after": 300}


# --- Every password entry point -----------------------------------------------------------


@pytest.fixture
def staff(db):
    return create_user("root", is_staff=True, is_superuser=True, email="root@example.com")


def admin_login(client, password: str):
    return client.post(ADMIN_LOGIN, {"username": "root", "password": password, "next": "/admin/"})


def test_the_admin_login_is_locked_after_the_limit(client, staff, hasher_calls, now):
    statuses = []
    for _ in range(15):
        response = admin_login(client, "wrong")
        statuses.append(response.status_code)
        assert response.status_code == 200  # the form again, never a 500
    assert hasher_calls.call_count == 5  # not once after the limit
    assert b"Too many failed login attempts" in response.content
    # Not even the right password gets in now.
    response = admin_login(client, PASSWORD)
    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content
    assert hasher_calls.call_count == 5
    # The API's login shares the account's bucket.
    assert post_login(APIClient(), "root").status_code == 429
    events = SecurityEvent.objects.values_list("type", flat=True)
    assert list(events).count(EventType.LOGIN_FAILED) == 5
    assert list(events).count(EventType.LOCKED_OUT) == 12  # 10 + the right password + the API


def test_the_admin_login_passes_below_the_limit(client, staff, now):
    for _ in range(4):
        admin_login(client, "wrong")
    response = admin_login(client, PASSWORD)
    assert response.status_code == 302


def test_the_browsable_api_login_counts_each_failure_once(client, user, hasher_calls, now):
    for _ in range(5):
        response = client.post(BROWSABLE_LOGIN, {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
    assert hasher_calls.call_count == 5
    response = client.post(BROWSABLE_LOGIN, {"username": "alice", "password": PASSWORD})
    assert b"Too many failed login attempts" in response.content
    assert hasher_calls.call_count == 5


def test_django_authenticate_callers_are_counted(rf, user, hasher_calls, now):
    request = rf.post("/", REMOTE_ADDR=A)
    for _ in range(5):
        assert authenticate(request, username="alice", password="wrong") is None
    assert authenticate(request, username="alice", password=PASSWORD) is None
    assert hasher_calls.call_count == 5
    # Without a request there is no address: the account's own bucket still refuses.
    assert authenticate(None, username="alice", password=PASSWORD) is None
    assert hasher_calls.call_count == 5
    # Failures outside a request wait for their transaction (audit); write them now,
    # while alice exists.
    audit.flush_deferred()


def test_a_successful_authenticate_gives_its_reservation_back(rf, user, now):
    request = rf.post("/", REMOTE_ADDR=A)
    for _ in range(10):
        assert authenticate(request, username="alice", password=PASSWORD) == user


def test_tesseras_login_counts_a_failure_once_through_the_backend(api, user, now):
    fail(api, 4)
    # Had the backend counted too, the account would be locked already.
    assert login_from(api, A).status_code == 200


# --- Current-password checks ---------------------------------------------------------------

CHANGE_URL = "/api/auth/password/change/"


def change_password(api, token: str, current: str, address: str = A):
    return api.post(
        CHANGE_URL,
        {"current_password": current, "new_password": "a-brand-new-passphrase-42"},
        format="json",
        REMOTE_ADDR=address,
        **auth_header(token),
    )


def field_code(response) -> str:
    """The code of the one field error of a 400 ``invalid`` answer."""
    assert response.status_code == 400, response.content
    [errors] = response.json()["fields"].values()
    return errors[0]["code"]


def test_wrong_current_passwords_count_towards_the_lockout(api, user, hasher_calls, now):
    token = login_from(api, A).json()["token"]
    for _ in range(5):
        assert field_code(change_password(api, token, "wrong")) == "wrong_password"
    hasher_calls.reset_mock()
    refused = change_password(api, token, PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["code"] == "locked_out"
    assert hasher_calls.call_count == 0
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # The session's device and the address: not the account, whose owner logs in from
    # elsewhere as before.
    assert login_from(api, B).status_code == 200
    assert login_from(api, A).status_code == 429


@pytest.mark.parametrize(
    ("method", "path"), [("post", "/api/auth/reauthenticate/"), ("delete", "/api/auth/me/")]
)
def test_every_current_password_check_counts(api, user, now, method, path):
    token = login_from(api, A).json()["token"]

    def check(password: str):
        send = getattr(api, method)
        body = {"password": password}
        return send(path, body, format="json", REMOTE_ADDR=A, **auth_header(token))

    for _ in range(5):
        assert field_code(check("wrong")) == "wrong_password"
    assert check(PASSWORD).json()["code"] == "locked_out"
    user.refresh_from_db()
    assert user.is_active


def test_a_stolen_session_locks_out_neither_its_device_nor_the_account(api, user, now):
    owner = login_from(api, A).json()
    # Ten guesses through the stolen token, five from each of two addresses: the
    # session's own bucket is full, and so are those addresses' (account, IP) ones.
    for address in (B, "192.0.2.1"):
        for _ in range(5):
            response = change_password(api, owner["token"], "wrong", address=address)
            assert field_code(response) == "wrong_password"
    assert login_from(api, "192.0.2.9", device=owner["device"]).status_code == 200
    assert login_from(api, "192.0.2.10").status_code == 200


def test_a_session_from_before_device_keys_counts_as_its_own_device(api, user, now):
    token = login_from(api, A).json()["token"]
    Session.objects.update(device_key="")
    for index in range(5):
        response = change_password(api, token, "wrong", address=f"192.0.2.{index}")
        assert field_code(response) == "wrong_password"
    # The account's bucket is untouched: the owner's next login from anywhere passes.
    assert login_from(api, "192.0.2.99").status_code == 200


def test_a_right_current_password_gives_its_reservation_back(api, user, now):
    token = login_from(api, A).json()["token"]
    for _ in range(4):
        change_password(api, token, "wrong")
    assert change_password(api, token, PASSWORD).status_code == 204
    # Four failures, not five: one more is still checked.
    assert field_code(change_password(api, token, "wrong")) == "wrong_password"


# --- A check that could not be made ---------------------------------------------------------


def test_a_login_whose_check_raised_does_not_count(api, user, now, monkeypatch):
    from django.contrib.auth.backends import ModelBackend
    from django.db import OperationalError

    from .conftest import failing

    with monkeypatch.context() as patch:
        patch.setattr(ModelBackend, "authenticate", failing(OperationalError("database down")))
        for _ in range(6):
            assert login_from(api, A).status_code == 503
    assert login_from(api, A).status_code == 200


def test_a_django_authenticate_whose_check_raised_does_not_count(rf, user, now, monkeypatch):
    from django.contrib.auth.backends import ModelBackend
    from django.db import OperationalError

    from .conftest import failing

    request = rf.post("/", REMOTE_ADDR=A)
    with monkeypatch.context() as patch:
        patch.setattr(ModelBackend, "authenticate", failing(OperationalError("database down")))
        for _ in range(6):
            with pytest.raises(OperationalError):
                authenticate(request, username="alice", password=PASSWORD)
    assert authenticate(request, username="alice", password=PASSWORD) == user


# --- Unlock -------------------------------------------------------------------------------


@pytest.fixture
def shared_store(settings):
    """Buckets every process sees, as the command needs (a LocMemCache is per process)."""
    settings.TESSERA = {**settings.TESSERA, "THROTTLE_BACKEND": "database"}


def test_unlock_forgets_the_accounts_failures(api, user, now, capsys, shared_store):
    fail(api, 5, A)
    call_command("tessera_unlock", "alice")
    assert "alice" in capsys.readouterr().out
    assert login_from(api, A).status_code == 200


def test_unlock_with_an_address_keeps_the_other_addresses_buckets(api, user, now, shared_store):
    fail(api, 5, A)
    call_command("tessera_unlock", "alice", "--ip", B)
    # The account's bucket is clear, A's (account, IP) bucket is not.
    assert login_from(api, B).status_code == 200
    assert login_from(api, A).status_code == 429
    call_command("tessera_unlock", "alice", "--ip", A)
    assert login_from(api, A).status_code == 200


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
def test_unlock_refuses_a_per_process_cache_it_cannot_reach(api, user, now):
    fail(api, 5, A)
    with pytest.raises(CommandError, match="per-process cache.*admin's 'unlock' action"):
        call_command("tessera_unlock", "alice")
    assert login_from(api, A).status_code == 429


def test_unlock_refuses_a_bad_address(db, shared_store):
    with pytest.raises(CommandError, match="not an IP address"):
        call_command("tessera_unlock", "alice", "--ip", "nowhere")


def test_the_admin_unlock_action(client, staff, user, api, now):
    fail(api, 5, A)
    client.force_login(staff)
    response = client.post(
        "/admin/auth/user/", {"action": "unlock_users", "_selected_action": [user.pk]}
    )
    assert response.status_code == 302
    assert login_from(api, A).status_code == 200
    assert SecurityEvent.objects.filter(
        type=EventType.ADMIN_ACTION, detail__action="unlock_users"
    ).exists()


def test_unlock_clears_only_that_account(api, user, other_user, now):
    fail(api, 5, A)
    fail(api, 5, A, username="bob")
    assert lockout.unlock("bob") >= 1
    assert login_from(api, A).status_code == 429


# --- Fail closed --------------------------------------------------------------------------

NO_IP_THROTTLE = {"LOGIN_THROTTLE_RATES": {"ip": None}}


@contextmanager
def cache_down(monkeypatch):
    """The cache failing inside the block only: the suite's teardown clears it after."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from .conftest import failing

    cache = caches["default"]
    with monkeypatch.context() as patch:
        if isinstance(cache, RedisCache):
            patch.setattr(cache._cache, "get_client", failing(ConnectionError("cache down")))
        else:
            patch.setattr(cache, "get", failing(ConnectionError("cache down")))
        yield


@override_settings(TESSERA=NO_IP_THROTTLE)
def test_a_cache_outage_refuses_the_login_with_503(api, user, hasher_calls, monkeypatch):
    with cache_down(monkeypatch):
        response = login_from(api, A)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert int(response["Retry-After"]) >= 1
    assert hasher_calls.call_count == 0
    assert not Session.objects.exists()


@override_settings(TESSERA={**NO_IP_THROTTLE, "THROTTLE_BACKEND": "database"})
def test_a_database_outage_refuses_the_login_with_503(api, user, hasher_calls, monkeypatch):
    from django.db import OperationalError

    from tessera.models import RateBucket

    from .conftest import failing

    monkeypatch.setattr(
        RateBucket.objects, "bulk_create", failing(OperationalError("database down"))
    )
    response = login_from(api, A)
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert hasher_calls.call_count == 0


@override_settings(TESSERA=NO_IP_THROTTLE)
def test_a_refund_that_fails_refuses_the_login(api, user, monkeypatch):
    from .conftest import failing

    monkeypatch.setattr(buckets, "settle", failing(buckets.ServiceUnavailable()))
    response = login_from(api, A)
    assert response.status_code == 503
    assert not Session.objects.exists()


def test_the_admin_login_says_so_when_the_store_is_down(client, staff, monkeypatch):
    with cache_down(monkeypatch):
        response = admin_login(client, PASSWORD)
    assert response.status_code == 200
    assert b"Logins are unavailable for a moment" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_a_clock_read_before_queueing_does_not_spend_the_burst(settings, backend):
    """Concurrent takes reach the store out of the order they read the clock in: one that
    read it before the others were applied still finds its share of the burst."""
    settings.TESSERA = {**settings.TESSERA, "THROTTLE_BACKEND": backend}
    bucket = buckets.Bucket("tessera:test:clock-order", buckets.Rate.parse("5/15min"), (), "ip")
    store = buckets._store()
    store.clear([bucket.key], [])
    applied_first = time.time()
    read_first = applied_first - 1
    assert [store.take([bucket], applied_first) for _ in range(4)] == [None] * 4
    assert store.take([bucket], read_first) is None
    assert store.take([bucket], applied_first) is not None


# Buckets in the database: tessera_unlock cannot reach a per-process cache.
@override_settings(TESSERA={"LOCKOUT_RATES": {"account": None}, "THROTTLE_BACKEND": "database"})
def test_ipv6_addresses_of_one_64_network_share_the_per_ip_buckets(api, user, now):
    for host in range(1, 6):
        assert login_from(api, f"2001:db8:1:2::{host}", "wrong").status_code == 401
    assert login_from(api, "2001:db8:1:2:ffff::1").json()["code"] == "locked_out"
    assert login_from(api, "2001:db8:1:3::1").status_code == 200
    call_command("tessera_unlock", "alice", "--ip", "2001:db8:1:2::99")
    assert login_from(api, "2001:db8:1:2::1").status_code == 200


# --- Behind a proxy -----------------------------------------------------------------------


def test_a_forwarded_header_without_num_proxies_warns_once_per_process(rf, monkeypatch, caplog):
    from tessera.services import client

    monkeypatch.setattr(client, "_warned_forwarded", False)
    forwarded = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1")
    with caplog.at_level("WARNING", logger="tessera"):
        assert client.client_ip(forwarded) == "10.0.0.1"
        client.client_ip(forwarded)
    warnings = [r for r in caplog.records if "NUM_PROXIES" in r.getMessage()]
    assert len(warnings) == 1


def test_no_warning_without_the_header_or_with_num_proxies(rf, monkeypatch, caplog):
    from tessera.services import client

    monkeypatch.setattr(client, "_warned_forwarded", False)
    with caplog.at_level("WARNING", logger="tessera"):
        client.client_ip(rf.get("/", REMOTE_ADDR="10.0.0.1"))
        with override_settings(TESSERA={"NUM_PROXIES": 1}):
            forwarded = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1")
            assert client.client_ip(forwarded) == "198.51.100.1"
    assert not [r for r in caplog.records if "NUM_PROXIES" in r.getMessage()]
