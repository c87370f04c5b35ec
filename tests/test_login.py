"""Login: same failure for every wrong case, hasher run once, throttled before the check."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tessera.checks import check_atomic_requests, check_settings
from tessera.models import RateBucket, Session

from .conftest import (
    CREDENTIALS,
    LOGIN_URL,
    PASSWORD,
    failing,
    in_production_transactions,
    post_login,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "username,password",
    [
        ("nobody", PASSWORD),  # unknown user
        ("alice", "wrong-password"),  # wrong password
        ("carol", PASSWORD),  # inactive user, right password
        ("dave", PASSWORD),  # unusable password
        ("nobody@example.com", PASSWORD),  # unknown e-mail
    ],
)
def test_every_failure_looks_the_same_and_hashes_once(
    api, user, inactive_user, unusable_user, hasher_calls, username, password
):
    response = post_login(api, username=username, password=password)
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "detail": "Unable to log in with the provided credentials.",
    }
    assert response["WWW-Authenticate"] == 'Token realm="api"'
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()


def test_success_hashes_once(api, user, hasher_calls):
    assert post_login(api, username="alice", password=PASSWORD).status_code == 200
    assert hasher_calls.call_count == 1


@override_settings(
    AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.AllowAllUsersModelBackend"]
)
def test_inactive_users_are_refused_whatever_the_backend(api, inactive_user, hasher_calls):
    hasher_calls.reset_mock()
    response = post_login(api, "carol")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()


def test_login_requires_an_identifier(api):
    response = api.post(LOGIN_URL, {"password": PASSWORD}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["username"][0]["code"] == "required"
    assert not Session.objects.exists()


def test_overlong_password_is_rejected_before_hashing(api, user, hasher_calls):
    response = post_login(api, username="alice", password="x" * 4097)
    assert response.status_code == 400
    assert response.json()["fields"]["password"][0]["code"] == "max_length"
    assert hasher_calls.call_count == 0
    assert not Session.objects.exists()


def test_device_name_too_long_is_400(api, user):
    response = post_login(api, username="alice", password=PASSWORD, device_name="x" * 101)
    assert response.status_code == 400
    assert not Session.objects.exists()


def test_login_records_device_agent_and_ip(api, user):
    api.post(
        LOGIN_URL,
        {**CREDENTIALS, "device_name": "Work laptop"},
        format="json",
        HTTP_USER_AGENT="Firefox/140",
        REMOTE_ADDR="203.0.113.9",
    )
    session = Session.objects.get()
    assert (session.device_name, session.user_agent, session.ip) == (
        "Work laptop",
        "Firefox/140",
        "203.0.113.9",
    )


def test_x_forwarded_for_is_ignored_without_trusted_proxies(api, user):
    post_login_with = api.post(
        LOGIN_URL,
        CREDENTIALS,
        format="json",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert post_login_with.status_code == 200
    assert Session.objects.get().ip == "10.0.0.1"


@override_settings(TESSERA={"NUM_PROXIES": 1})
def test_x_forwarded_for_is_used_with_one_trusted_proxy(api, user):
    api.post(
        LOGIN_URL,
        CREDENTIALS,
        format="json",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1",
    )
    assert Session.objects.get().ip == "198.51.100.1"


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_failures_lock_the_account_before_the_password_check(api, user, hasher_calls, backend):
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend}):
        for _ in range(5):
            assert post_login(api, username="alice", password="wrong").status_code == 401
        response = post_login(api, username="ALICE", password=PASSWORD)
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert int(response["Retry-After"]) == 300  # the first back-off tier
    assert hasher_calls.call_count == 5  # the refused attempt never reached the hasher
    assert not Session.objects.exists()


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "3/min"}})
def test_ip_throttle_spans_usernames(api, user):
    for name in ("a", "b", "c"):
        assert post_login(api, username=name, password="x").status_code == 401
    response = post_login(api, username="alice", password=PASSWORD)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "3/min"}})
def test_clients_without_a_readable_address_share_one_ip_bucket(api, user):
    statuses = [
        api.post(
            LOGIN_URL,
            {"username": f"u{i}", "password": "x"},
            format="json",
            REMOTE_ADDR="unix:/run/app.sock",
        ).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


@override_settings(TESSERA={"LOCKOUT_RATES": {"ip": None, "account_ip": None, "account": "3/min"}})
def test_username_and_email_share_one_lockout_bucket(api, user):
    for identifier in ("alice", "alice@example.com", "ALICE"):
        post_login(api, identifier, "x")
    response = api.post(
        LOGIN_URL, {"email": "alice@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"


@override_settings(TESSERA={"LOCKOUT_RATES": {"ip": "100/hour"}})
def test_a_lockout_scope_left_out_keeps_its_default(api, user):
    statuses = [post_login(api, password="x").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_switching_one_limit_off_is_not_a_warning(settings):
    settings.DEBUG = True
    with override_settings(TESSERA={"LOCKOUT_RATES": {"ip": None}}):
        assert check_settings() == []
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None}}):
        assert [m.id for m in check_settings()] == ["tessera.W001"]
    with override_settings(TESSERA={"LOCKOUT_RATES": {"account": None, "account_ip": None}}):
        assert [m.id for m in check_settings()] == ["tessera.W111"]


def test_throttle_reopens_as_time_passes(api, user, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr("tessera.services.buckets.time.time", lambda: now[0])
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "1/min"}}):
        assert post_login(api, username="alice", password="x").status_code == 401
        refused = post_login(api, username="alice", password=PASSWORD)
        assert refused.status_code == 429
        assert refused["Retry-After"] == "60"
        now[0] += 60
        assert post_login(api, username="alice", password=PASSWORD).status_code == 200


@in_production_transactions
@override_settings(
    TESSERA={
        "THROTTLE_BACKEND": "database",
        "LOCKOUT_RATES": {"ip": None, "account_ip": None, "account": "3/min"},
    }
)
def test_database_lockout_counts_survive_atomic_requests(api, user, atomic_requests):
    for _ in range(3):
        post_login(api, password="x")
    rows = RateBucket.objects.filter(key__contains=":account:")
    assert rows.exclude(key__endswith="#held").count() == 1
    response = post_login(api)
    assert response.status_code == 429


def test_atomic_requests_with_database_throttle_warns(atomic_requests):
    with override_settings(TESSERA={"THROTTLE_BACKEND": "database"}):
        assert [m.id for m in check_atomic_requests()] == ["tessera.W003"]
    assert check_atomic_requests() == []


def test_throttle_cache_failure_fails_closed(api, user, monkeypatch):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    with monkeypatch.context() as patch:
        # Inside the block only: the suite's teardown clears the cache afterwards.
        if isinstance(cache, RedisCache):
            patch.setattr(cache._cache, "get_client", failing(ConnectionError("cache down")))
        else:
            patch.setattr(cache, "get", failing(ConnectionError("cache down")))
        response = post_login(api, username="alice", password=PASSWORD)
    assert response.status_code == 503
    assert not Session.objects.exists()
