"""The session list, revoking one, the per-user limit, signals, and no clear tokens."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import user_logged_in, user_logged_out
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from tessera import signals
from tessera.models import RefreshToken, RevokeReason, Session
from tessera.services.sessions import open_session

from .conftest import PASSWORD, auth_header, failing, get_protected, post_login

pytestmark = pytest.mark.django_db


def test_list_shows_own_live_sessions_and_marks_current(api, user, other_user, login):
    first = login(device_name="phone")["token"]
    login(device_name="laptop")
    open_session(other_user, device_name="bob's")
    response = api.get("/api/auth/sessions/", **auth_header(first))
    assert response.status_code == 200
    rows = response.json()
    assert {r["device_name"] for r in rows} == {"phone", "laptop"}
    assert [r["current"] for r in rows if r["device_name"] == "phone"] == [True]
    assert set(rows[0]) == {
        "id",
        "kind",
        "device_name",
        "user_agent",
        "ip",
        "created",
        "last_used",
        "expiry",
        "revoked",
        "revoke_reason",
        "current",
        "amr",
        "auth_time",
        "mfa_enrolment_required",
        "provider",
    }


def test_ended_sessions_are_listed_with_state_all(api, user, login):
    keep = login(device_name="keep")["token"]
    gone = login(device_name="gone")["token"]
    api.post("/api/auth/logout/", **auth_header(gone))
    live = api.get("/api/auth/sessions/", **auth_header(keep)).json()
    every = api.get("/api/auth/sessions/?state=all", **auth_header(keep)).json()
    assert [r["device_name"] for r in live] == ["keep"]
    ended = [r for r in every if r["device_name"] == "gone"]
    assert ended[0]["revoke_reason"] == "logout" and ended[0]["revoked"]


def test_revoke_one_session(api, user, login):
    keep, drop = login()["token"], login()["token"]
    listed = api.get("/api/auth/sessions/", **auth_header(drop)).json()
    drop_id = next(row["id"] for row in listed if row["current"])
    response = api.delete(f"/api/auth/sessions/{drop_id}/", **auth_header(keep))
    assert response.status_code == 204
    assert get_protected(api, drop).status_code == 401
    assert get_protected(api, keep).status_code == 200
    assert Session.objects.get(pk=drop_id).revoke_reason == RevokeReason.USER


def test_another_users_session_is_404_and_untouched(api, user, other_user, login):
    token = login()["token"]
    theirs = open_session(other_user).session
    response = api.delete(f"/api/auth/sessions/{theirs.pk}/", **auth_header(token))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_session_endpoints_need_authentication(api):
    for method, path in [
        ("get", "/api/auth/sessions/"),
        ("post", "/api/auth/logout/"),
        ("post", "/api/auth/logout/all/"),
    ]:
        response = getattr(api, method)(path)
        assert response.status_code == 401
        assert response["WWW-Authenticate"]
        assert response.json()["code"] == "not_authenticated"


@override_settings(TESSERA={"TOKEN_LIMIT_PER_USER": 2})
def test_limit_rejects_by_default(api, user, login):
    login(), login()
    response = post_login(api)
    assert response.status_code == 403
    assert response.json()["code"] == "session_limit_reached"
    assert Session.objects.count() == 2


@override_settings(
    TESSERA={"TOKEN_LIMIT_PER_USER": 2, "TOKEN_LIMIT_POLICY": "revoke_least_recently_used"}
)
def test_limit_can_revoke_the_least_recently_used(api, user, login, clock):
    oldest = login(device_name="oldest")["token"]
    clock.advance(minutes=5)
    middle = login(device_name="middle")["token"]
    clock.advance(minutes=5)
    get_protected(api, oldest)  # now the most recently used
    clock.advance(minutes=5)
    newest = login(device_name="newest")["token"]
    assert get_protected(api, middle).status_code == 401
    assert get_protected(api, oldest).status_code == 200
    assert get_protected(api, newest).status_code == 200
    assert Session.objects.get(device_name="middle").revoke_reason == RevokeReason.LIMIT


@pytest.fixture
def received():
    events = []
    handlers = {
        "created": signals.session_created,
        "revoked": signals.session_revoked,
        "logged_in": user_logged_in,
        "logged_out": user_logged_out,
    }
    receivers = {}
    for name, signal in handlers.items():

        def receiver(sender, _name=name, **kwargs):
            events.append((_name, kwargs.get("reason")))

        receivers[name] = receiver
        signal.connect(receiver, weak=False)
    yield events
    for name, signal in handlers.items():
        signal.disconnect(receivers[name])


def test_login_and_logout_send_signals(api, user, login, received):
    token = login()["token"]
    api.post("/api/auth/logout/", **auth_header(token))
    assert received == [
        ("created", None),
        ("logged_in", None),
        ("revoked", "logout"),
        ("logged_out", None),
    ]


def test_no_clear_token_in_any_column_or_log(api, user, login, caplog):
    caplog.set_level(logging.DEBUG)
    token = login()["token"]
    get_protected(api, token)
    api.post("/api/auth/logout/", **auth_header(token))
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            for row in cursor.fetchall():
                assert not any(token in str(value) for value in row), table
    assert token not in caplog.text
    secret_part = token.split("_", 1)[1]
    assert not Session.objects.filter(token_digest__contains=secret_part).exists()


def test_admin_lists_sessions_without_digests_and_revokes(client, user, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    issued = open_session(user, device_name="phone")
    client.force_login(admin)
    listing = client.get("/admin/tessera/session/")
    detail = client.get(f"/admin/tessera/session/{issued.session.pk}/change/")
    for page in (listing, detail):
        assert page.status_code == 200
        assert issued.token not in page.content.decode()
        assert issued.session.token_digest not in page.content.decode()
    assert b"phone" in listing.content
    for state in ("live", "revoked", "expired"):
        assert client.get(f"/admin/tessera/session/?state={state}").status_code == 200
    open_session(admin, device_name="root's laptop")
    by_user = client.get(f"/admin/tessera/session/?user__id__exact={user.pk}").content
    assert b"phone" in by_user and b"root&#x27;s laptop" not in by_user
    kind = client.get("/admin/tessera/session/?kind__exact=pat").content
    assert b"phone" not in kind
    response = client.post(
        "/admin/tessera/session/",
        {"action": "revoke", "_selected_action": [str(issued.session.pk)]},
    )
    assert response.status_code == 302
    issued.session.refresh_from_db()
    assert issued.session.revoke_reason == RevokeReason.ADMIN
    assert client.get("/admin/tessera/session/add/").status_code == 403


def test_admin_revoke_with_the_cache_down_says_so_and_revokes_nothing(
    client, user, django_user_model, monkeypatch
):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    issued = open_session(user, device_name="phone")
    client.force_login(admin)
    monkeypatch.setattr(caches["default"], "set_many", failing(ConnectionError("cache down")))
    response = client.post(
        "/admin/tessera/session/",
        {"action": "revoke", "_selected_action": [str(issued.session.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"nothing was revoked" in response.content
    issued.session.refresh_from_db()
    assert issued.session.revoked_at is None


def test_clearsessions_deletes_only_long_ended_sessions(user, clock):
    live = open_session(user).session
    revoked = open_session(user).session
    Session.objects.filter(pk=revoked.pk).update(revoked_at=clock.now)
    clock.advance(days=8)
    recent = open_session(user).session
    call_command("tessera_clearsessions", batch_size=1)
    remaining = set(Session.objects.values_list("pk", flat=True))
    # `live` expired idle after 10 hours, more than 7 days ago; `revoked` ended then too.
    assert remaining == {recent.pk}
    assert live.pk not in remaining


def test_clearsessions_rejects_bad_arguments(user):
    open_session(user)
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("tessera_clearsessions", batch_size=0)
    assert Session.objects.count() == 1


def test_clearsessions_deletes_expired_refresh_tokens_and_spent_email_keys(user, clock):
    from tessera.models import EmailVerificationKey, RefreshToken

    session = open_session(user).session
    old = RefreshToken.objects.create(
        session=session, jti_digest="a" * 64, expires_at=clock.now + timedelta(hours=1)
    )
    current = RefreshToken.objects.create(
        session=session, jti_digest="b" * 64, expires_at=clock.now + timedelta(hours=3)
    )
    keys = {
        name: EmailVerificationKey.objects.create(
            user=user,
            email="alice@example.com",
            purpose="verify",
            key_digest=name * 64,
            expires_at=clock.now + timedelta(hours=hours),
            used_at=used,
        )
        for name, hours, used in [("u", 5, clock.now), ("e", 1, None), ("k", 5, None)]
    }
    clock.advance(hours=2)
    out = StringIO()
    call_command("tessera_clearsessions", stdout=out)
    assert set(RefreshToken.objects.values_list("pk", flat=True)) == {current.pk}
    assert old.pk not in set(RefreshToken.objects.values_list("pk", flat=True))
    assert list(EmailVerificationKey.objects.values_list("pk", flat=True)) == [keys["k"].pk]
    assert "1 expired refresh token(s), 2 used or expired e-mail key(s)" in out.getvalue()


def test_cleanup_keeps_the_live_successor_of_an_expired_refresh_token(api, jwt_login, clock):
    pair = jwt_login()
    clock.advance(hours=12)
    current = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    clock.advance(hours=13)  # the first refresh token has expired; its successor has not
    call_command("tessera_clearsessions", stdout=None)
    assert RefreshToken.objects.count() == 1
    again = api.post(
        "/api/auth/jwt/refresh/", {"refresh": current.json()["refresh"]}, format="json"
    )
    assert again.status_code == 200
