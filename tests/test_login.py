"""Login: same failure for every wrong case, hasher run once, throttled before the check."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tessera.models import Session

from .conftest import CREDENTIALS, LOGIN_URL, PASSWORD, failing, post_login

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
        LOGIN_URL, {**CREDENTIALS, "device_name": "Work laptop"},
        format="json", HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.9",
    )
    session = Session.objects.get()
    assert (session.device_name, session.user_agent, session.ip) == (
        "Work laptop", "Firefox/140", "203.0.113.9"
    )


def test_x_forwarded_for_is_ignored_without_trusted_proxies(api, user):
    post_login_with = api.post(
        LOGIN_URL, CREDENTIALS, format="json",
        REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert post_login_with.status_code == 200
    assert Session.objects.get().ip == "10.0.0.1"


@override_settings(TESSERA={"NUM_PROXIES": 1})
def test_x_forwarded_for_is_used_with_one_trusted_proxy(api, user):
    api.post(
        LOGIN_URL, CREDENTIALS, format="json",
        REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1",
    )
    assert Session.objects.get().ip == "198.51.100.1"


@pytest.mark.parametrize("backend", ["cache", "database"])
def test_username_throttle_counts_before_the_password_check(api, user, hasher_calls, backend):
    rates = {"ip": "100/min", "username": "5/min"}
    with override_settings(TESSERA={"THROTTLE_BACKEND": backend, "LOGIN_THROTTLE_RATES": rates}):
        for _ in range(5):
            assert post_login(api, username="alice", password="wrong").status_code == 401
        response = post_login(api, username="ALICE", password=PASSWORD)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert hasher_calls.call_count == 5  # the throttled attempt never reached the hasher
    assert not Session.objects.exists()


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": "3/min", "username": None}})
def test_ip_throttle_spans_usernames(api, user):
    for name in ("a", "b", "c"):
        assert post_login(api, username=name, password="x").status_code == 401
    assert post_login(api, username="alice", password=PASSWORD).status_code == 429


def test_throttle_window_reopens(api, user, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr("tessera.services.throttling.time.time", lambda: now[0])
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None, "username": "1/min"}}):
        assert post_login(api, username="alice", password="x").status_code == 401
        assert post_login(api, username="alice", password=PASSWORD).status_code == 429
        now[0] += 60
        assert post_login(api, username="alice", password=PASSWORD).status_code == 200


def test_throttle_cache_failure_fails_closed(api, user, monkeypatch):
    from django.core.cache import caches

    monkeypatch.setattr(caches["default"], "incr", failing(ConnectionError("cache down")))
    response = post_login(api, username="alice", password=PASSWORD)
    assert response.status_code == 503
    assert not Session.objects.exists()
