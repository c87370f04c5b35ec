"""Each process remembers the claims of access tokens it verified, never their validity."""

from __future__ import annotations

import pytest

from tessera.tokens import jwt as codec

from .conftest import get_protected

pytestmark = pytest.mark.django_db


@pytest.fixture
def signature_checks(monkeypatch) -> list[str]:
    real_decode, checked = codec.jwt.decode, []

    def counting_decode(token, *args, **kwargs):
        checked.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(codec.jwt, "decode", counting_decode)
    codec._verified_tokens.clear()
    return checked


def bearer(api, token: str):
    return get_protected(api, token, keyword="Bearer")


def test_a_repeated_access_token_is_verified_once(api, jwt_login, signature_checks):
    access = jwt_login()["access"]
    for _ in range(3):
        assert bearer(api, access).status_code == 200
    assert signature_checks == [access]


def test_a_remembered_token_still_expires(api, jwt_login, signature_checks, clock):
    access = jwt_login()["access"]
    assert bearer(api, access).status_code == 200
    clock.advance(minutes=6)
    response = bearer(api, access)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_a_remembered_token_is_still_refused_after_logout(api, jwt_login, signature_checks):
    access = jwt_login()["access"]
    assert bearer(api, access).status_code == 200
    assert api.post("/api/auth/logout/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 204
    assert bearer(api, access).json()["code"] == "token_revoked"


def test_a_remembered_access_token_is_still_not_a_refresh_token(api, jwt_login, signature_checks):
    access = jwt_login()["access"]
    assert bearer(api, access).status_code == 200
    response = api.post("/api/auth/jwt/refresh/", {"refresh": access}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_token_type"


def test_a_new_signing_key_drops_what_was_verified_with_the_old_one(
    api, jwt_login, signature_checks, settings
):
    access = jwt_login()["access"]
    assert bearer(api, access).status_code == 200
    settings.TESSERA = {"SIGNING_KEY": "another-signing-key-of-more-than-32-bytes-length"}
    assert bearer(api, access).json()["code"] == "invalid_token"


def test_size_zero_verifies_every_time(api, jwt_login, signature_checks, settings):
    settings.TESSERA = {"JWT_VERIFIED_CACHE_SIZE": 0}
    access = jwt_login()["access"]
    bearer(api, access)
    bearer(api, access)
    assert signature_checks == [access, access]


def test_the_map_is_bounded(api, jwt_login, signature_checks, settings):
    settings.TESSERA = {"JWT_VERIFIED_CACHE_SIZE": 2}
    for _ in range(5):
        assert bearer(api, jwt_login()["access"]).status_code == 200
        assert len(codec._verified_tokens._entries) <= 2


def test_a_forged_token_is_never_remembered(api, jwt_login, signature_checks):
    access = jwt_login()["access"]
    head, body, signature = access.split(".")
    forged = f"{head}.{body}.{signature[:-2]}AA"
    for _ in range(2):
        assert bearer(api, forged).json()["code"] == "invalid_token"
    assert signature_checks == [forged, forged]
