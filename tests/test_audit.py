"""The audit trail: what is recorded, what never is, who sees it, and how long it stays."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.core.management import call_command
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from tessera.admin import SecurityEventAdmin
from tessera.models import EventOutcome, EventType, SecurityEvent, Session
from tessera.services import audit

from .conftest import PASSWORD, PROTECTED_URL, auth_header, create_user, post_login
from .mfa_support import mfa_ticket, second_factor

pytestmark = pytest.mark.django_db
EVENTS_URL = "/api/auth/events/"
BROWSER = {"HTTP_USER_AGENT": "Firefox/140", "REMOTE_ADDR": "203.0.113.7"}


def types_of(user) -> list[str]:
    return [event.type for event in SecurityEvent.objects.filter(user=user).order_by("id")]


def events_of(client, token: str, **params) -> dict:
    response = client.get(EVENTS_URL, params, **auth_header(token))
    assert response.status_code == 200, response.content
    return response.json()


def test_a_login_is_recorded_with_the_client_and_the_session(api, user):
    body = {"username": "alice", "password": PASSWORD, "device_name": "laptop"}
    token = api.post("/api/auth/login/", body, format="json", **BROWSER).json()["token"]

    event = SecurityEvent.objects.get(user=user)
    session = Session.objects.get(user=user)
    assert (event.type, event.outcome) == (EventType.LOGIN_SUCCEEDED, EventOutcome.SUCCESS)
    assert (event.ip, event.user_agent, event.session_id) == (
        "203.0.113.7",
        "Firefox/140",
        session.pk,
    )
    assert event.detail == {"kind": "token", "amr": ["pwd"], "device_name": "laptop"}
    assert token not in json.dumps(list(SecurityEvent.objects.values()), default=str)


def test_a_failed_login_belongs_to_the_account_and_keeps_no_password(api, user):
    post_login(api, password="Hunter2-not-it", **BROWSER)

    event = SecurityEvent.objects.get()
    assert (event.user, event.type, event.outcome) == (user, EventType.LOGIN_FAILED, "failure")
    assert event.identifier_digest == audit.identifier_digest("alice")
    assert "Hunter2-not-it" not in json.dumps(list(SecurityEvent.objects.values()), default=str)


def test_an_attempt_on_no_account_is_kept_only_as_a_digest(api, db):
    post_login(api, username="Mallory", password="guess")

    event = SecurityEvent.objects.get()
    assert event.user is None
    # The compared form: any spelling that would name the same account gives one digest.
    assert event.identifier_digest == audit.identifier_digest("mallory")
    assert "allory" not in json.dumps(list(SecurityEvent.objects.values()), default=str)


def test_logout_and_logout_all_record_each_ended_session_with_the_caller(api, user, login):
    first, second, third = (login()["token"] for _ in range(3))
    api.post("/api/auth/logout/", **auth_header(first), **BROWSER)
    api.post("/api/auth/logout/all/", **auth_header(second))

    ended = SecurityEvent.objects.filter(type=EventType.SESSION_REVOKED).order_by("id")
    assert [e.detail["reason"] for e in ended] == ["logout", "logout_all", "logout_all"]
    # Recorded deep in the service, yet with the address of the request that asked.
    assert (ended[0].ip, ended[0].user_agent) == ("203.0.113.7", "Firefox/140")
    assert {e.session_id for e in ended} == set(Session.objects.values_list("pk", flat=True))
    assert third


def test_a_rolled_back_revocation_leaves_no_event(user, login):
    login()
    session = Session.objects.get()
    from tessera.services.sessions import revoke_sessions

    with pytest.raises(RuntimeError), transaction.atomic():
        revoke_sessions([session], "logout")
        raise RuntimeError("the caller's work failed")

    assert not SecurityEvent.objects.filter(type=EventType.SESSION_REVOKED).exists()


def test_a_failure_outlives_the_rollback_of_its_transaction(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(EventType.LOGIN_FAILED, user=user, outcome=EventOutcome.FAILURE)
        raise RuntimeError("the request's transaction rolls back")
    assert not SecurityEvent.objects.exists()

    # Written once the response has been sent (request_finished).
    audit.flush_deferred()
    assert types_of(user) == [EventType.LOGIN_FAILED]


def test_a_failed_login_under_atomic_requests_is_recorded_after_the_response(
    api, user, atomic_requests
):
    # The admin's login view runs in the request's transaction there.
    api.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert types_of(user) == [EventType.LOGIN_FAILED]


def test_password_change_records_the_change_and_the_sessions_it_ended(api, user, login):
    other = login()["token"]
    token = login()["token"]
    body = {"current_password": PASSWORD, "new_password": "A-new-long-passphrase-42"}
    assert (
        api.post(
            "/api/auth/password/change/", body, format="json", **auth_header(token)
        ).status_code
        == 204
    )

    assert EventType.PASSWORD_CHANGED in types_of(user)
    ended = SecurityEvent.objects.get(type=EventType.SESSION_REVOKED)
    assert ended.detail["reason"] == "password_changed"
    assert other


def test_personal_tokens_created_and_revoked(api, user, login):
    token = login()["token"]
    body = {"name": "ci", "scopes": []}
    created = api.post("/api/auth/tokens/", body, format="json", **auth_header(token)).json()
    api.delete(f"/api/auth/tokens/{created['id']}/", **auth_header(token))

    made = SecurityEvent.objects.get(type=EventType.TOKEN_CREATED)
    assert (made.user, made.detail) == (user, {"name": "ci", "scopes": []})
    ended = SecurityEvent.objects.get(type=EventType.SESSION_REVOKED)
    assert ended.detail["kind"] == "pat"
    assert created["token"] not in json.dumps(list(SecurityEvent.objects.values()), default=str)


def test_a_reused_refresh_token_is_recorded_as_a_failure(api, user, jwt_login, settings):
    settings.TESSERA = {**settings.TESSERA, "JWT_REUSE_GRACE": timedelta(0)}
    refresh = jwt_login()["refresh"]
    api.post("/api/auth/jwt/refresh/", {"refresh": refresh}, format="json")
    assert (
        api.post("/api/auth/jwt/refresh/", {"refresh": refresh}, format="json").status_code == 401
    )

    reused = SecurityEvent.objects.get(type=EventType.REFRESH_TOKEN_REUSED)
    assert (reused.user, reused.outcome) == (user, EventOutcome.FAILURE)
    assert SecurityEvent.objects.filter(
        type=EventType.SESSION_REVOKED, detail__reason="token_reused"
    ).exists()


def test_second_factor_set_up_challenge_failure_and_use(api, user, alice_mfa):
    ticket = mfa_ticket(api)
    assert second_factor(api, ticket, code="000000").status_code == 400
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200

    assert types_of(user) == [
        EventType.MFA_ENROLMENT_STARTED,
        EventType.MFA_ADDED,
        EventType.RECOVERY_CODES_GENERATED,
        EventType.MFA_CHALLENGED,
        EventType.MFA_FAILED,
        EventType.LOGIN_SUCCEEDED,
        EventType.MFA_USED,
    ]
    failed = SecurityEvent.objects.get(type=EventType.MFA_FAILED)
    assert failed.detail == {"method": "code", "error": "invalid_code"}
    assert SecurityEvent.objects.get(type=EventType.LOGIN_SUCCEEDED).detail["amr"] == [
        "pwd",
        "otp",
        "mfa",
    ]


def test_sign_up_is_recorded(api, db):
    body = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}
    assert api.post("/api/auth/register/", body, format="json").status_code == 201
    assert SecurityEvent.objects.filter(type=EventType.REGISTERED, user__username="carol").exists()


def test_events_lists_the_callers_own_newest_first_in_pages(api, user, other_user, login):
    post_login(api, password="wrong")
    post_login(api, username="bob", password="wrong")
    for _ in range(3):
        token = login()["token"]

    first = events_of(api, token, page_size=2)
    assert [e["type"] for e in first["results"]] == ["login_succeeded", "login_succeeded"]
    rest = api.get(first["next"], **auth_header(token)).json()
    assert [e["type"] for e in rest["results"]] == ["login_succeeded", "login_failed"]
    assert rest["next"] is None
    mine = {e["id"] for e in first["results"] + rest["results"]}
    assert mine == set(SecurityEvent.objects.filter(user=user).values_list("id", flat=True))
    assert set(first["results"][0]) == {
        "id",
        "type",
        "outcome",
        "time",
        "ip",
        "user_agent",
        "session",
        "detail",
    }


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.b64encode(b"p=2026").decode(),
        base64.b64encode(b"p=notadate").decode(),
        base64.b64encode(b"p=%00").decode(),
        base64.b64encode(b"p=9999999999-01-01").decode(),
    ],
)
def test_a_cursor_this_endpoint_did_not_give_is_404(api, user, login, cursor):
    token = login()["token"]
    response = api.get(EVENTS_URL, {"cursor": cursor}, **auth_header(token))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_events_need_a_login_and_refuse_personal_tokens(api, user, login):
    anonymous = api.get(EVENTS_URL)
    assert anonymous.status_code == 401
    assert "WWW-Authenticate" in anonymous

    token = login()["token"]
    body = {"name": "ci", "scopes": []}
    pat = api.post("/api/auth/tokens/", body, format="json", **auth_header(token)).json()["token"]
    assert api.get(EVENTS_URL, **auth_header(pat)).status_code == 403


def test_authenticated_requests_write_no_event(api, user, login):
    token = login()["token"]
    before = SecurityEvent.objects.count()
    for _ in range(20):
        assert api.get(PROTECTED_URL, **auth_header(token)).status_code == 200
    assert SecurityEvent.objects.count() == before


def test_the_off_switch_records_nothing(api, user, settings):
    settings.TESSERA = {**settings.TESSERA, "AUDIT_EVENTS": False}
    post_login(api, password="wrong")
    token = post_login(api).json()["token"]
    api.post("/api/auth/logout/", **auth_header(token))
    assert not SecurityEvent.objects.exists()


@pytest.mark.parametrize(
    "secret", [{"token": "tsr_abc"}, {"password": "pw"}, {"code": "123456"}, {"key": "k"}]
)
def test_detail_never_takes_a_key_its_type_does_not_allow(user, secret):
    audit.record(EventType.LOGIN_SUCCEEDED, user=user, detail={"kind": "token", **secret})
    assert SecurityEvent.objects.get().detail == {"kind": "token"}


def test_detail_values_are_cut_short(user):
    audit.record(EventType.LOGIN_SUCCEEDED, user=user, detail={"device_name": "x" * 5000})
    assert len(SecurityEvent.objects.get().detail["device_name"]) == audit.MAX_TEXT


def test_an_event_that_cannot_be_written_never_fails_the_request(api, user, monkeypatch):
    from django.db import DatabaseError

    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(SecurityEvent.objects, "bulk_create", broken)
    assert post_login(api).status_code == 200
    assert Session.objects.filter(user=user).exists()


def test_clearsessions_deletes_events_past_the_retention(user, clock, settings):
    audit.record(EventType.PASSWORD_CHANGED, user=user)
    clock.advance(days=181)
    audit.record(EventType.PASSWORD_RESET, user=user)
    call_command("tessera_clearsessions", stdout=open("/dev/null", "w"))
    assert types_of(user) == [EventType.PASSWORD_RESET]

    settings.TESSERA = {**settings.TESSERA, "AUDIT_RETENTION": None}
    clock.advance(days=3650)
    call_command("tessera_clearsessions", stdout=open("/dev/null", "w"))
    assert types_of(user) == [EventType.PASSWORD_RESET]


def test_a_django_login_is_recorded_once_with_its_session(client, db):
    staff = create_user("root", is_staff=True, is_superuser=True)
    client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert types_of(staff) == [EventType.LOGIN_SUCCEEDED]
    event = SecurityEvent.objects.get()
    assert event.detail["kind"] == "browser"
    assert event.session_id == Session.objects.get(user=staff).pk


def test_a_django_login_without_a_session_is_recorded_as_such(client, db, settings):
    settings.TESSERA = {**settings.TESSERA, "DJANGO_LOGIN_SESSIONS": False}
    staff = create_user("root", is_staff=True, is_superuser=True)
    client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert types_of(staff) == [EventType.LOGIN_SUCCEEDED]
    assert SecurityEvent.objects.get().detail == {"kind": "django"}


def test_the_admin_lists_events_read_only_and_finds_attempts_by_what_was_typed(db, api):
    post_login(api, username="nobody@example.com", password="x")
    staff = create_user("root", is_staff=True, is_superuser=True)
    request = RequestFactory().get("/admin/tessera/securityevent/")
    request.user = staff
    model_admin = SecurityEventAdmin(SecurityEvent, site)

    found, _ = model_admin.get_search_results(
        request, SecurityEvent.objects.all(), "NOBODY@example.com"
    )
    assert [e.type for e in found] == [EventType.LOGIN_FAILED]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_the_admin_revoke_action_is_recorded_with_the_administrator(db, user, login):
    login()
    staff = create_user("root", is_staff=True, is_superuser=True)
    from django.contrib.messages.storage.fallback import FallbackStorage

    from tessera.admin import SessionAdmin

    request = RequestFactory().post("/admin/tessera/session/")
    request.user, request.session = staff, {}
    request._messages = FallbackStorage(request)
    SessionAdmin(Session, site).revoke(request, Session.objects.all())

    action = SecurityEvent.objects.get(type=EventType.ADMIN_ACTION)
    assert (action.user, action.detail) == (
        staff,
        {"action": "revoke_sessions", "admin": "root", "count": 1},
    )
    revoked = SecurityEvent.objects.get(type=EventType.SESSION_REVOKED)
    assert (revoked.user, revoked.detail["reason"]) == (user, "admin")


def test_every_event_type_has_a_detail_rule_and_a_line_in_the_docs():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    assert set(audit.ALLOWED_DETAIL) == set(EventType.values)
    assert [t for t in EventType.values if f"`{t}`" not in page] == []


def test_no_event_is_older_than_its_request(user, clock):
    audit.record(EventType.PASSWORD_CHANGED, user=user)
    assert SecurityEvent.objects.get().created_at == timezone.now()
