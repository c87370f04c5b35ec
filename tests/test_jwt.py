"""JWT: the seed flow, rotation with reuse detection, sliding tokens, keys, cookies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import override_settings

from tessera import signals
from tessera.models import RefreshToken, RevokeReason, Session, SessionKind
from tessera.tokens import jwt as codec

from .conftest import (
    JWT_URL,
    PASSWORD,
    auth_header,
    create_user,
    get_protected,
    in_production_transactions,
    log_in,
    receiving,
)
from .jwt_keys import entry, rsa_pair

pytestmark = pytest.mark.django_db
SLIDING_URL = "/api/auth/jwt/sliding/"


def refresh(api, token):
    return api.post("/api/auth/jwt/refresh/", {"refresh": token}, format="json")


def test_seed_flow(api, jwt_login):
    body = jwt_login(device_name="cli")
    assert set(body) == {"access", "refresh", "user", "device"}
    assert get_protected(api, body["access"], "Bearer").status_code == 200
    rotated = refresh(api, body["refresh"])
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != body["refresh"]
    new_access = rotated.json()["access"]
    assert get_protected(api, new_access, "Bearer").status_code == 200
    session = Session.objects.get()
    assert (session.kind, session.device_name) == (SessionKind.JWT, "cli")


def test_claims_and_header(jwt_login):
    import jwt as pyjwt

    access = jwt_login()["access"]
    header = pyjwt.get_unverified_header(access)
    claims = pyjwt.decode(access, options={"verify_signature": False})
    session = Session.objects.get()
    assert header["kid"] and header["alg"] == "HS256"
    assert claims["sub"] == str(session.user_id) and claims["sid"] == str(session.pk)
    assert claims["token_type"] == "access"
    assert claims["iss"] == "urn:tessera:tests.settings"
    assert claims["aud"] == "urn:tessera:tests.settings:api"
    assert claims["exp"] - claims["iat"] == 300
    assert {"jti", "nbf"} <= set(claims)


def test_refresh_tokens_are_stored_only_as_digests(jwt_login):
    body = jwt_login()
    import jwt as pyjwt

    jti = pyjwt.decode(body["refresh"], options={"verify_signature": False})["jti"]
    row = RefreshToken.objects.get()
    assert row.jti_digest == codec.jti_digest(jti)
    assert jti not in row.jti_digest
    assert Session.objects.filter(token_digest__contains=jti).count() == 0


@pytest.mark.parametrize("path", ["/api/auth/jwt/", "/api/auth/jwt/sliding/"])
@pytest.mark.parametrize("username,password", [("nobody", PASSWORD), ("alice", "wrong")])
def test_jwt_logins_refuse_bad_credentials_and_create_nothing(
    api, user, path, username, password, hasher_calls
):
    response = api.post(path, {"username": username, "password": password}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists() and not RefreshToken.objects.exists()


def test_access_hot_path_query_counts(api, jwt_login, django_assert_num_queries):
    from django.core.cache import caches

    access = jwt_login()["access"]
    caches["default"].clear()
    with django_assert_num_queries(1):
        assert get_protected(api, access, "Bearer").status_code == 200
    with django_assert_num_queries(0):
        assert get_protected(api, access, "Bearer").status_code == 200


@override_settings(TESSERA={"JWT_REVOCATION_CHECK": False})
def test_stateless_mode_skips_the_session(api, jwt_login):
    body = jwt_login()
    Session.objects.update(revoked_at="2000-01-01T00:00:00Z")
    response = get_protected(api, body["access"], "Bearer")
    assert response.status_code == 200


@override_settings(TESSERA={"JWT_REVOCATION_CHECK": False})
def test_logout_ends_the_session_in_stateless_jwt_mode(api, jwt_login):
    pair = jwt_login()
    assert api.post("/api/auth/logout/", **auth_header(pair["access"], "Bearer")).status_code == 204
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
    refreshed = refresh(api, pair["refresh"])
    assert refreshed.status_code == 401


def test_logout_with_jwt_revokes_session_and_access(api, jwt_login):
    body = jwt_login()
    headers = auth_header(body["access"], "Bearer")
    assert api.post("/api/auth/logout/", **headers).status_code == 204
    assert api.get("/api/protected/", **headers).status_code == 401
    assert refresh(api, body["refresh"]).status_code == 401
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT


def test_reuse_after_grace_revokes_the_family(api, jwt_login, clock):
    body = jwt_login()
    first = refresh(api, body["refresh"]).json()
    with receiving(signals.refresh_token_reused, "session") as reused:
        clock.advance(seconds=11)
        response = refresh(api, body["refresh"])
    assert response.status_code == 401
    assert response.json()["code"] == "token_reused"
    assert len(reused) == 1
    # The thief's and the owner's descendants are both dead now.
    assert refresh(api, first["refresh"]).status_code == 401
    assert get_protected(api, first["access"], "Bearer").status_code == 401
    session = Session.objects.get()
    assert session.revoke_reason == RevokeReason.TOKEN_REUSED


def test_reused_session_shows_revoked_with_reason_in_sessions_list(api, jwt_login, login, clock):
    body = jwt_login()
    refresh(api, body["refresh"])
    clock.advance(seconds=30)
    refresh(api, body["refresh"])
    other = login()["token"]
    rows = api.get("/api/auth/sessions/?state=all", **auth_header(other)).json()
    jwt_row = next(r for r in rows if r["kind"] == "jwt")
    assert jwt_row["revoke_reason"] == "token_reused" and jwt_row["revoked"]


def test_reuse_inside_grace_returns_the_same_successor(api, jwt_login, clock):
    body = jwt_login()
    first = refresh(api, body["refresh"]).json()
    clock.advance(seconds=5)
    again = refresh(api, body["refresh"])
    assert again.status_code == 200
    assert again.json()["refresh"] == first["refresh"]
    assert RefreshToken.objects.count() == 2
    assert refresh(api, first["refresh"]).status_code == 200


@in_production_transactions
def test_reuse_revocation_survives_atomic_requests(api, jwt_login, clock, atomic_requests):
    pair = jwt_login()
    successor = refresh(api, pair["refresh"])
    clock.advance(seconds=30)
    reused = refresh(api, pair["refresh"])
    assert reused.json()["code"] == "token_reused"
    assert Session.objects.get().revoke_reason == RevokeReason.TOKEN_REUSED
    thief = refresh(api, successor.json()["refresh"])
    assert thief.status_code == 401


def test_refresh_extends_idle_but_never_past_max_ttl(api, jwt_login, clock):
    token = jwt_login()["refresh"]
    for _ in range(40):
        clock.advance(hours=20)
        response = refresh(api, token)
        if response.status_code != 200:
            break
        token = response.json()["refresh"]
    session = Session.objects.get()
    assert response.status_code == 401
    assert session.expires_at - session.created_at == timedelta(days=30)
    assert clock.now >= session.expires_at  # refreshing kept it alive until MAX_TTL only
    assert clock.now - session.created_at < timedelta(days=31)
    assert all(r.expires_at <= session.expires_at for r in RefreshToken.objects.all())


def test_idle_jwt_session_expires_with_its_refresh_token(api, jwt_login, clock):
    token = jwt_login()["refresh"]
    clock.advance(days=1, seconds=1)
    response = refresh(api, token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_refresh_requires_a_token(api):
    response = api.post("/api/auth/jwt/refresh/", {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_jwt_endpoints_challenge_with_bearer(api):
    response = api.post("/api/auth/jwt/refresh/", {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_verify_honours_revocation(api, jwt_login):
    body = jwt_login()
    for token in (body["access"], body["refresh"]):
        assert api.post("/api/auth/jwt/verify/", {"token": token}, format="json").json() == {}
    api.post("/api/auth/logout/", **auth_header(body["access"], "Bearer"))
    for token in (body["access"], body["refresh"]):
        response = api.post("/api/auth/jwt/verify/", {"token": token}, format="json")
        assert response.status_code == 401


def test_verify_refuses_a_rotated_refresh_token(api, jwt_login):
    body = jwt_login()
    refresh(api, body["refresh"])
    response = api.post("/api/auth/jwt/verify/", {"token": body["refresh"]}, format="json")
    assert response.status_code == 401


def test_sliding_tokens(api, user, clock):
    token = log_in(api, path=SLIDING_URL)["token"]
    assert get_protected(api, token, "Bearer").status_code == 200
    clock.advance(minutes=6)
    assert get_protected(api, token, "Bearer").status_code == 401
    renewed = api.post("/api/auth/jwt/sliding/refresh/", {"token": token}, format="json")
    assert renewed.status_code == 200
    token = renewed.json()["token"]
    assert get_protected(api, token, "Bearer").status_code == 200
    clock.advance(days=1, seconds=1)
    late = api.post("/api/auth/jwt/sliding/refresh/", {"token": token}, format="json")
    assert late.status_code == 401


def test_sliding_token_is_not_a_refresh_token(api, user):
    token = log_in(api, path=SLIDING_URL)["token"]
    assert refresh(api, token).json()["code"] == "wrong_token_type"


@pytest.mark.parametrize(
    "body,code",
    [
        ({"token": "garbage"}, "invalid_token"),
        ({"token": "a.b.c"}, "invalid_token"),
        ({}, "invalid"),
        ({"token": "x" * 9000}, "invalid"),
    ],
)
def test_sliding_refresh_refuses_bad_input(api, body, code):
    response = api.post("/api/auth/jwt/sliding/refresh/", body, format="json")
    assert response.json()["code"] == code
    assert response.status_code == (400 if code == "invalid" else 401)


def test_sliding_refresh_refuses_an_access_token(api, jwt_login):
    access = jwt_login()["access"]
    response = api.post("/api/auth/jwt/sliding/refresh/", {"token": access}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_token_type"
    assert Session.objects.get().revoked_at is None


def test_custom_claims_hook(api, jwt_login):
    with override_settings(TESSERA={"JWT_CLAIMS_HOOK": "tests.test_jwt.claims_hook"}):
        access = jwt_login()["access"]
    import jwt as pyjwt

    claims = pyjwt.decode(access, options={"verify_signature": False})
    assert claims["roles"] == ["reader"]
    assert claims["sub"] != "admin"  # registered claims cannot be overridden


def claims_hook(user, session):
    return {"roles": ["reader"], "sub": "admin"}


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"])
def test_every_algorithm_round_trips(api, jwt_login, algorithm):
    with override_settings(TESSERA={"JWT_KEYS": [entry("k1", algorithm)]}):
        access = jwt_login()["access"]
        assert get_protected(api, access, "Bearer").status_code == 200


def test_jwks_publishes_public_keys_only(api):
    keys = [
        entry("rsa-1", "RS256"),
        entry("ec-1", "ES256"),
        entry("ed-1", "EdDSA"),
        entry("hmac-1", "HS256"),
    ]
    with override_settings(TESSERA={"JWT_KEYS": keys}):
        body = api.get("/api/auth/jwt/jwks/").json()
    assert [k["kid"] for k in body["keys"]] == ["rsa-1", "ec-1", "ed-1"]
    for key in body["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)
        assert key["use"] == "sig"


def test_key_rotation_step_by_step(api, jwt_login, clock):
    old, new = entry("2026-01", "RS256"), entry("2026-07", "ES256")

    def works(token):
        return get_protected(api, token, "Bearer").status_code == 200

    with override_settings(TESSERA={"JWT_KEYS": [old]}):
        old_tokens = jwt_login()
    # Step 1: publish the new key, keep signing with the old one.
    with override_settings(TESSERA={"JWT_KEYS": [old, new], "JWT_ACTIVE_KID": "2026-01"}):
        kids = [k["kid"] for k in api.get("/api/auth/jwt/jwks/").json()["keys"]]
        assert kids == ["2026-01", "2026-07"]
        assert works(old_tokens["access"])
    # Step 2: sign with the new key; tokens signed with the old one still verify.
    with override_settings(TESSERA={"JWT_KEYS": [old, new], "JWT_ACTIVE_KID": "2026-07"}):
        new_tokens = jwt_login()
        assert works(old_tokens["access"]) and works(new_tokens["access"])
        rotated = refresh(api, old_tokens["refresh"]).json()
    # Step 3: after the longest token lifetime, retire the old key.
    clock.advance(days=1, seconds=1)
    with override_settings(TESSERA={"JWT_KEYS": [new]}):
        assert not works(old_tokens["access"])
        assert refresh(api, rotated["refresh"]).status_code in (200, 401)
        assert works(jwt_login()["access"])


def test_verify_only_key_cannot_be_active():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    _private, public = rsa_pair()
    keys = [{"kid": "pub", "algorithm": "RS256", "public_key": public}]
    with override_settings(TESSERA={"JWT_KEYS": keys}):
        with pytest.raises(SystemCheckError, match="tessera.E010"):
            call_command("check")


def roles_hook(user, session):
    return {"roles": sorted(user.groups.values_list("name", flat=True))}


@pytest.fixture
def manager(db):
    from django.contrib.auth.models import Group

    user = create_user("mia")
    user.groups.add(Group.objects.create(name="Manager"))
    return user


def manager_access(api) -> str:
    return log_in(api, "mia", path=JWT_URL)["access"]


def test_roles_come_from_groups_not_from_claims_by_default(api, manager):
    with override_settings(TESSERA={"JWT_CLAIMS_HOOK": "tests.test_jwt.roles_hook"}):
        access = manager_access(api)
        assert api.get("/api/manager-content/", **auth_header(access, "Bearer")).status_code == 200
        manager.groups.clear()
        response = api.get("/api/manager-content/", **auth_header(access, "Bearer"))
    assert response.status_code == 403  # the token still says Manager; the groups win


def test_roles_claim_is_trusted_only_when_opted_in(api, manager, django_assert_num_queries):
    trusted = {"JWT_CLAIMS_HOOK": "tests.test_jwt.roles_hook", "JWT_ROLES_CLAIM": "roles"}
    with override_settings(TESSERA=trusted):
        access = manager_access(api)
        manager.groups.clear()
        get_protected(api, access, "Bearer")  # warm the cache
        with django_assert_num_queries(0):
            response = api.get("/api/manager-content/", **auth_header(access, "Bearer"))
    assert response.status_code == 200  # stale until refresh, as documented


def test_a_rotation_never_deletes_a_cache_entry(api, jwt_login, monkeypatch):
    """A deletion after a racing logout's tombstone would let a stale live copy back in."""
    pair = jwt_login()
    assert get_protected(api, pair["access"], keyword="Bearer").status_code == 200
    cache, deleted = caches["default"], []
    monkeypatch.setattr(cache, "delete_many", lambda keys, *a, **k: deleted.extend(keys))
    monkeypatch.setattr(cache, "delete", lambda key, *a, **k: deleted.append(key))
    assert refresh(api, pair["refresh"]).status_code == 200
    assert deleted == []
