"""One function opens every session with its first credential, atomically.

Also the revocation and JWT-session rules that go through the same service: idempotent
revocation of personal access tokens, the session kind and ``sub`` checked on every JWT
endpoint, and cookies that do not outlive their session.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import user_logged_in
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from tessera import session_cache, signals
from tessera.errors import ServiceUnavailable
from tessera.models import RefreshToken, Session, SessionKind
from tessera.services.sessions import open_session
from tessera.tokens import jwt as codec

from .conftest import PASSWORD, auth_header

pytestmark = pytest.mark.django_db

CREDENTIALS = {"username": "alice", "password": PASSWORD}
LOGIN_URLS = ["/api/auth/login/", "/api/auth/jwt/", "/api/auth/jwt/sliding/"]


def failing_claims_hook(user, session):
    raise RuntimeError("the project's claims hook is broken")


@pytest.fixture
def raising_client() -> APIClient:
    # The project's own bug answers 500; the test is about what it leaves behind.
    return APIClient(raise_request_exception=False)


@pytest.mark.parametrize("url", ["/api/auth/jwt/", "/api/auth/jwt/sliding/"])
def test_a_raising_claims_hook_leaves_no_session_and_no_refresh_token(raising_client, user, url):
    hook = f"{__name__}.failing_claims_hook"
    with override_settings(TESSERA={"JWT_CLAIMS_HOOK": hook, "TOKEN_LIMIT_PER_USER": 1}):
        assert raising_client.post(url, CREDENTIALS, format="json").status_code == 500
        assert not Session.objects.exists()
        assert not RefreshToken.objects.exists()
    # Nothing counts against the limit: the next login (hook fixed) is allowed.
    with override_settings(TESSERA={"TOKEN_LIMIT_PER_USER": 1}):
        assert raising_client.post(url, CREDENTIALS, format="json").status_code == 200
    assert Session.objects.live().count() == 1


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_a_raising_signal_receiver_rolls_the_whole_login_back(raising_client, user, url):
    def broken_receiver(**kwargs):
        raise RuntimeError("receiver bug")

    user_logged_in.connect(broken_receiver, weak=False)
    try:
        assert raising_client.post(url, CREDENTIALS, format="json").status_code == 500
    finally:
        user_logged_in.disconnect(broken_receiver)
    assert not Session.objects.exists()
    assert not RefreshToken.objects.exists()


def test_browser_login_failure_leaves_no_session(user):
    browser = APIClient(enforce_csrf_checks=False, raise_request_exception=False)
    with mock.patch(
        "django.contrib.sessions.backends.base.SessionBase.cycle_key",
        side_effect=RuntimeError("session store down"),
    ):
        response = browser.post("/api/auth/session/login/", CREDENTIALS, format="json")
    assert response.status_code == 500
    assert not Session.objects.exists()


def test_every_kind_is_opened_by_one_function_with_its_signals(user):
    created, logged_in = [], []

    def on_created(session, **kwargs):
        created.append(session.kind)

    def on_login(**kwargs):
        logged_in.append(True)

    signals.session_created.connect(on_created, weak=False)
    user_logged_in.connect(on_login, weak=False)
    try:
        for kind in (SessionKind.TOKEN, SessionKind.JWT, SessionKind.BROWSER):
            open_session(user, kind=kind)
        open_session(user, kind=SessionKind.PAT, expires_at=None, is_login=False)
    finally:
        signals.session_created.disconnect(on_created)
        user_logged_in.disconnect(on_login)
    assert created == ["token", "jwt", "browser", "pat"]
    # A personal access token is minted by a signed-in user; it is not a login.
    assert len(logged_in) == 3
    pat = Session.objects.get(kind=SessionKind.PAT)
    assert pat.expires_at is None and pat.idle_expires_at is None


# DELETE tokens/<id>/ is idempotent


def test_revoking_a_personal_token_again_finishes_a_failed_revocation(api, user, login):
    login_token = login()["token"]
    created = api.post(
        "/api/auth/tokens/",
        {"name": "ci", "scopes": []},
        format="json",
        **auth_header(login_token),
    ).json()
    pat = created["token"]
    assert api.get("/api/protected/", **auth_header(pat)).status_code == 200  # now cached
    with mock.patch.object(
        session_cache, "tombstone", side_effect=ServiceUnavailable()
    ) as tombstone:
        first = api.delete(f"/api/auth/tokens/{created['id']}/", **auth_header(login_token))
    assert first.status_code == 503 and tombstone.called
    # The revocation is in the database, but the cached copy still says live.
    retry = api.delete(f"/api/auth/tokens/{created['id']}/", **auth_header(login_token))
    assert retry.status_code == 204
    assert api.get("/api/protected/", **auth_header(pat)).status_code == 401


def test_revoking_another_users_personal_token_is_still_404(api, user, other_user, login):
    theirs = open_session(other_user, kind=SessionKind.PAT, expires_at=None, is_login=False)
    response = api.delete(f"/api/auth/tokens/{theirs.session.pk}/", **auth_header(login()["token"]))
    assert response.status_code == 404
    assert Session.objects.get(pk=theirs.session.pk).revoked_at is None


# Every JWT endpoint checks the session's kind and subject


def forged_for(session: Session, *, sub: str | None = None, token_type=codec.ACCESS) -> str:
    """A correctly signed token naming ``session`` (the key is the project's own)."""
    now = timezone.now()
    claims = {"sub": sub or str(session.user_id), "sid": str(session.pk)}
    if token_type == codec.SLIDING:
        claims["refresh_exp"] = int((now + timedelta(hours=1)).timestamp())
    return codec.encode(
        claims, token_type=token_type, issued_at=now, expires_at=now + timedelta(minutes=5)
    )


@pytest.mark.parametrize("token_type", [codec.ACCESS, codec.SLIDING])
def test_verify_refuses_a_token_naming_an_opaque_session(api, user, token_type):
    opaque_session = open_session(user, kind=SessionKind.TOKEN).session
    token = forged_for(opaque_session, token_type=token_type)
    response = api.post("/api/auth/jwt/verify/", {"token": token}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_verify_refuses_a_token_whose_sub_is_another_user(api, user, other_user):
    session = open_session(user, kind=SessionKind.JWT).session
    token = forged_for(session, sub=str(other_user.pk))
    response = api.post("/api/auth/jwt/verify/", {"token": token}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_sliding_refresh_refuses_a_token_naming_an_opaque_session(api, user):
    opaque_session = open_session(user, kind=SessionKind.BROWSER).session
    token = forged_for(opaque_session, token_type=codec.SLIDING)
    response = api.post("/api/auth/jwt/sliding/refresh/", {"token": token}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_sliding_refresh_refuses_a_token_whose_sub_is_another_user(api, user, other_user):
    session = open_session(user, kind=SessionKind.JWT).session
    token = forged_for(session, sub=str(other_user.pk), token_type=codec.SLIDING)
    response = api.post("/api/auth/jwt/sliding/refresh/", {"token": token}, format="json")
    assert response.status_code == 401


# Cookies never outlive the session


def test_jwt_cookies_never_outlive_the_sessions_absolute_expiry(user):
    browser = APIClient()
    settings = {
        "JWT_COOKIES": True,
        "JWT_COOKIE_SECURE": False,
        "MAX_TTL": timedelta(hours=1),
        "JWT_REFRESH_LIFETIME": timedelta(days=1),
        "JWT_ACCESS_LIFETIME": timedelta(hours=2),
    }
    with override_settings(TESSERA=settings):
        response = browser.post("/api/auth/jwt/", CREDENTIALS, format="json")
    assert response.status_code == 200
    assert 3500 <= int(response.cookies["tessera_refresh"]["max-age"]) <= 3600
    assert 3500 <= int(response.cookies["tessera_access"]["max-age"]) <= 3600
