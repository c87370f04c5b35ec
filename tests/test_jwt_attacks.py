"""Every known way to forge or misuse a JWT gets the documented 401, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.test import override_settings

from tessera.tokens import jwt as codec

from .conftest import auth_header, get_protected
from .jwt_keys import entry, rsa_pair

pytestmark = pytest.mark.django_db

RSA_KEYS = {"JWT_KEYS": [entry("rsa-1", "RS256")]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> list[str]:
    return token.split(".")


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def forge(header: dict, claims: dict, signature: str = "") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), signature])


@pytest.fixture
def tokens(jwt_login):
    return jwt_login()


def assert_refused(api, token: str):
    response = get_protected(api, token, "Bearer")
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"code", "detail"}
    assert response["WWW-Authenticate"]
    return body


def test_alg_none(api, tokens):
    claims = claims_of(tokens["access"])
    kid = pyjwt.get_unverified_header(tokens["access"])["kid"]
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    assert_refused(api, forge(header, claims))
    assert_refused(api, forge({**header, "alg": "None"}, claims))


def test_hs256_signed_with_the_rsa_public_key(api, jwt_login):
    with override_settings(TESSERA=RSA_KEYS):
        claims = claims_of(jwt_login()["access"])
        public_pem = rsa_pair()[1].encode()
        header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
        signing_input = ".".join(segments(forge(header, claims))[:2]).encode()
        signature = b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
        assert_refused(api, forge(header, claims, signature))


def test_unknown_kid(api, tokens):
    claims = claims_of(tokens["access"])
    token = pyjwt.encode(claims, "x" * 64, algorithm="HS256", headers={"kid": "nope"})
    assert assert_refused(api, token)["code"] == "invalid_token"


def test_missing_kid(api, tokens):
    claims = claims_of(tokens["access"])
    assert_refused(api, pyjwt.encode(claims, "x" * 64, algorithm="HS256"))


@pytest.mark.parametrize("header_name", ["jku", "x5u", "jwk"])
def test_key_url_and_embedded_key_headers_are_ignored(api, user, monkeypatch, header_name):
    def no_network(*args, **kwargs):
        raise AssertionError("an outbound connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    attacker_private, attacker_public = rsa_pair(3072)
    attacker_jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(
        load_pem_public_key(attacker_public.encode()), as_dict=True
    )
    value = attacker_jwk if header_name == "jwk" else "https://attacker.invalid/keys.json"
    with override_settings(TESSERA=RSA_KEYS):
        now = int(time.time())
        claims = {
            "sub": str(user.pk),
            "sid": "00000000-0000-0000-0000-000000000000",
            "iss": codec.issuer(),
            "aud": codec.audience(),
            "iat": now,
            "nbf": now,
            "exp": now + 60,
            "jti": "j",
            "token_type": "access",
        }
        token = pyjwt.encode(
            claims,
            attacker_private,
            algorithm="RS256",
            headers={"kid": "rsa-1", header_name: value},
        )
        assert_refused(api, token)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_flipped_bit(api, tokens, part):
    pieces = segments(tokens["access"])
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    pieces[part] = b64(bytes(raw))
    assert_refused(api, ".".join(pieces))


def test_payload_spliced_from_another_token(api, tokens):
    other = segments(tokens["refresh"])
    access = segments(tokens["access"])
    assert_refused(api, ".".join([access[0], other[1], access[2]]))


def test_expired(api, tokens, clock):
    clock.advance(minutes=5, seconds=1)
    assert assert_refused(api, tokens["access"])["code"] == "token_expired"


def test_not_before_in_the_future(api, tokens, clock):
    clock.advance(minutes=-1)
    assert_refused(api, tokens["access"])


def resigned(token: str, **changes) -> str:
    """The token re-signed with the real key after changing claims (an insider forgery)."""
    claims = {**claims_of(token), **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    key = codec.key_ring().active
    return pyjwt.encode(claims, key.signing_key, algorithm=key.algorithm, headers={"kid": key.kid})


def test_wrong_audience(api, tokens):
    assert_refused(api, resigned(tokens["access"], aud="urn:other-service"))


def test_wrong_issuer(api, tokens):
    assert_refused(api, resigned(tokens["access"], iss="urn:other-service"))


@pytest.mark.parametrize("claim", ["exp", "jti", "token_type", "sid", "sub", "iat", "nbf"])
def test_missing_required_claim(api, tokens, claim):
    assert_refused(api, resigned(tokens["access"], **{claim: None}))


def test_numeric_subject_is_refused(api, tokens):
    assert_refused(api, resigned(tokens["access"], sub=1))


def test_refresh_as_access(api, tokens):
    assert assert_refused(api, tokens["refresh"])["code"] == "wrong_token_type"


def test_access_as_refresh(api, tokens):
    response = api.post("/api/auth/jwt/refresh/", {"refresh": tokens["access"]}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_token_type"


def test_deactivated_user(api, tokens, user):
    user.is_active = False
    user.save()
    assert_refused(api, tokens["access"])


def test_revoked_session(api, tokens):
    api.post("/api/auth/logout/all/", **auth_header(tokens["access"], "Bearer"))
    assert assert_refused(api, tokens["access"])["code"] == "token_revoked"


def test_other_users_session_id(api, tokens, other_user):
    assert_refused(api, resigned(tokens["access"], sub=str(other_user.pk)))


@pytest.mark.parametrize("size", [8 * 1024, 9 * 1024])
def test_garbage(api, user, size):
    garbage = "a.b." + "x" * size
    assert_refused(api, garbage)
    response = api.post("/api/auth/jwt/verify/", {"token": garbage[:8192]}, format="json")
    assert response.status_code == 401


def test_garbage_refresh_body_is_a_clear_error(api):
    response = api.post("/api/auth/jwt/refresh/", {"refresh": ["a", "b"]}, format="json")
    assert response.status_code == 400
    response = api.post("/api/auth/jwt/refresh/", {"refresh": "not.a.jwt"}, format="json")
    assert response.status_code == 401
