"""HTTP Basic: off by default, HTTPS only, throttled like login, hasher run once."""

from __future__ import annotations

import base64

import pytest
from django.test import override_settings

from tessera.models import Session

from .conftest import PASSWORD, create_user, post_login

pytestmark = pytest.mark.django_db
ME = "/api/auth/me/"
ON = {"BASIC_AUTH": True}


def basic(identifier: str, password: str, encoding: str = "utf-8") -> dict:
    raw = f"{identifier}:{password}".encode(encoding)
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(raw).decode("ascii")}


def get_me(api, headers, secure=True):
    return api.get(ME, secure=secure, **headers)


def test_off_by_default(api, user):
    response = get_me(api, basic("alice", PASSWORD))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@override_settings(TESSERA=ON)
def test_right_credentials_over_https(api, user, hasher_calls):
    response = get_me(api, basic("alice", PASSWORD))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists()  # no session per request


@override_settings(TESSERA=ON)
def test_login_by_email_and_non_ascii_passwords(api):
    create_user("zoe", "pässwörd-ünïcode", email="zoe@example.com")
    assert get_me(api, basic("zoe@example.com", "pässwörd-ünïcode")).status_code == 200


@override_settings(TESSERA=ON)
def test_plain_http_is_refused(api, user, hasher_calls):
    response = get_me(api, basic("alice", PASSWORD), secure=False)
    assert response.status_code == 403
    assert response.json()["code"] == "https_required"
    assert hasher_calls.call_count == 0


@pytest.mark.parametrize(
    "overrides",
    [{"DEBUG": True}, {"TESSERA": {**ON, "BASIC_AUTH_ALLOW_HTTP": True}}],
    ids=["debug", "setting"],
)
def test_plain_http_when_allowed(api, user, overrides):
    with override_settings(TESSERA=ON), override_settings(**overrides):
        assert get_me(api, basic("alice", PASSWORD), secure=False).status_code == 200


@override_settings(TESSERA=ON)
def test_every_failure_looks_the_same_and_hashes_once(
    api, user, inactive_user, unusable_user, hasher_calls
):
    answers = []
    for identifier, password in [
        ("nobody", PASSWORD),
        ("alice", "wrong"),
        ("carol", PASSWORD),
        ("dave", PASSWORD),
    ]:
        hasher_calls.reset_mock()
        response = get_me(api, basic(identifier, password))
        assert hasher_calls.call_count == 1, identifier
        answers.append((response.status_code, response.json()))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0] == (
        401,
        {
            "code": "invalid_credentials",
            "detail": "Unable to log in with the provided credentials.",
        },
    )


@override_settings(
    TESSERA={**ON, "LOCKOUT_RATES": {"ip": None, "account_ip": None, "account": "2/min"}}
)
def test_locked_out_with_the_login_counters(api, user, hasher_calls):
    for _ in range(2):
        assert get_me(api, basic("alice", "wrong")).status_code == 401
    hasher_calls.reset_mock()
    response = get_me(api, basic("alice", PASSWORD))
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert int(response["Retry-After"]) > 0
    assert hasher_calls.call_count == 0
    # Login through the endpoint shares the counter.
    login = post_login(api)
    assert login.status_code == 429


@override_settings(TESSERA=ON)
@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic a b",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-separator").decode(),
    ],
)
def test_malformed_headers(api, user, header, hasher_calls):
    response = api.get(ME, secure=True, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_header"
    assert hasher_calls.call_count == 0


@override_settings(TESSERA=ON)
def test_overlong_password_is_refused_without_hashing(api, user, hasher_calls):
    response = get_me(api, basic("alice", "p" * 4097))
    assert response.status_code == 401
    assert hasher_calls.call_count == 0


@override_settings(TESSERA=ON)
def test_latin1_credentials_are_decoded(api):
    create_user("jose", "contraseña-segura")
    assert get_me(api, basic("jose", "contraseña-segura", "latin-1")).status_code == 200


@override_settings(TESSERA=ON)
def test_no_basic_challenge_is_announced(api):
    response = api.get(ME, secure=True)
    assert response.status_code == 401
    assert not response["WWW-Authenticate"].startswith("Basic")


@override_settings(TESSERA={**ON, "EMAIL_VERIFICATION": "mandatory"})
def test_mandatory_verification_applies(api, user):
    response = get_me(api, basic("alice", PASSWORD))
    assert (response.status_code, response.json()["code"]) == (403, "email_not_verified")
