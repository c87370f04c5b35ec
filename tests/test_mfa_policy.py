"""MFA_REQUIRED: a covered user without a second factor gets a session that may only set
one up (and read me/, log out) until it is done."""

from __future__ import annotations

import base64

import pyotp
import pytest
from django.test import override_settings

from tessera.models import RevokeReason, Session, SessionKind
from tessera.services.mfa import policy

from .conftest import (
    JWT_URL,
    LOGIN_URL,
    PASSWORD,
    auth_header,
    get_protected,
    post_login,
    register,
    with_csrf,
)
from .mfa_support import (
    FACTORS_URL,
    TOTP_CONFIRM_URL,
    TOTP_URL,
    enable_totp,
    second_factor,
)

pytestmark = pytest.mark.django_db


def refused(response) -> bool:
    return (response.status_code, response.json().get("code")) == (403, "mfa_enrolment_required")


def log_in(api, username: str, path: str = LOGIN_URL) -> dict:
    response = post_login(api, username, PASSWORD, path=path)
    assert response.status_code == 200, response.content
    return response.json()


def set_up_totp(api, token: str) -> dict:
    secret = api.post(TOTP_URL, **auth_header(token)).json()["secret"]
    response = api.post(
        TOTP_CONFIRM_URL, {"code": pyotp.TOTP(secret).now()}, format="json", **auth_header(token)
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def admins_must(settings):
    settings.TESSERA = {**settings.TESSERA, "MFA_REQUIRED": ["Admin"]}


# --- Who is covered ---------------------------------------------------------------------


def test_roles_name_groups(seeded, admins_must):
    covered = {name for name, user in seeded.items() if policy.covers(user)}
    # A superuser counts as an admin, as IsAdmin counts them.
    assert covered == {"admin", "root"}


@override_settings(TESSERA={"MFA_REQUIRED": "all"})
def test_all_covers_everyone(seeded):
    assert all(policy.covers(user) for user in seeded.values())


def test_by_default_nobody_is_covered(seeded):
    assert not any(policy.covers(user) for user in seeded.values())


# --- The waiting session ------------------------------------------------------------------


def test_a_covered_user_without_a_factor_may_only_set_one_up(api, seeded, admins_must):
    body = log_in(api, "admin")
    assert body["session"]["mfa_enrolment_required"] is True
    assert body["session"]["amr"] == ["pwd"]
    token = body["token"]
    assert refused(get_protected(api, token))
    assert refused(api.get("/api/auth/sessions/", **auth_header(token)))
    assert refused(api.post("/api/auth/tokens/", {}, format="json", **auth_header(token)))
    assert refused(api.patch("/api/auth/me/", {}, format="json", **auth_header(token)))
    assert api.get("/api/auth/me/", **auth_header(token)).status_code == 200
    listed = api.get(FACTORS_URL, **auth_header(token)).json()
    assert listed == {"factors": [], "required": True}


def test_setting_up_a_factor_ends_the_wait_of_this_session_only(api, seeded, admins_must):
    token = log_in(api, "admin")["token"]
    other = log_in(api, "admin")["token"]
    confirmed = set_up_totp(api, token)
    assert len(confirmed["recovery_codes"]) == 10
    assert get_protected(api, token).status_code == 200
    assert Session.objects.get(pk=session_id(api, token)).mfa_enrolment_required is False
    # The other waiting session never showed the factor: it ends.
    response = get_protected(api, other)
    assert (response.status_code, response.json()["code"]) == (401, "token_revoked")
    assert Session.objects.get(revoked_at__isnull=False).revoke_reason == RevokeReason.MFA_ENROLLED
    # From now on the login asks for the factor.
    assert post_login(api, "admin", PASSWORD).json()["code"] == "mfa_required"


def session_id(api, token: str) -> str:
    rows = api.get("/api/auth/sessions/", **auth_header(token)).json()
    return next(row["id"] for row in rows if row["current"])


def test_a_user_outside_the_policy_is_not_held(api, seeded, admins_must):
    body = log_in(api, "manager")
    assert body["session"]["mfa_enrolment_required"] is False
    assert get_protected(api, body["token"]).status_code == 200


def test_a_covered_user_with_a_factor_logs_in_with_it(api, seeded, admins_must):
    factors = enable_totp(seeded["admin"])
    ticket = mfa_ticket_for(api, "admin")
    body = second_factor(api, ticket, code=factors.next_code()).json()
    assert body["session"]["mfa_enrolment_required"] is False
    assert get_protected(api, body["token"]).status_code == 200


def mfa_ticket_for(api, username: str) -> str:
    response = post_login(api, username, PASSWORD)
    assert response.json()["code"] == "mfa_required"
    return response.json()["ticket"]


def test_logging_out_works_while_waiting(api, seeded, admins_must):
    token = log_in(api, "admin")["token"]
    assert api.post("/api/auth/logout/", **auth_header(token)).status_code == 204


def test_a_waiting_jwt_session_is_held_by_its_claim_too(api, seeded, settings):
    settings.TESSERA = {"MFA_REQUIRED": ["Admin"], "JWT_REVOCATION_CHECK": False}
    access = log_in(api, "admin", JWT_URL)["access"]
    assert refused(get_protected(api, access, "Bearer"))
    assert api.get(FACTORS_URL, **auth_header(access, "Bearer")).status_code == 200


def test_a_waiting_jwt_session_refreshes(api, seeded, admins_must):
    pair = log_in(api, "admin", JWT_URL)
    assert refused(get_protected(api, pair["access"], "Bearer"))
    fresh = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert fresh.status_code == 200
    assert refused(get_protected(api, fresh.json()["access"], "Bearer"))


def test_a_waiting_browser_session_is_held(browser, seeded, admins_must):
    csrf = with_csrf(browser)
    body = {"username": "admin", "password": PASSWORD}
    assert browser.post("/api/auth/session/login/", body, format="json", **csrf).status_code == 200
    assert refused(browser.get("/api/auth/sessions/"))
    assert browser.get("/api/auth/me/").status_code == 200


@override_settings(
    TESSERA={"MFA_REQUIRED": "all", "PREVENT_ENUMERATION": False, "REGISTER_AUTO_LOGIN": True}
)
def test_a_sign_up_that_logs_in_waits_too(api, db):
    token = register(api).json()["token"]
    assert refused(get_protected(api, token))
    assert Session.objects.get().mfa_enrolment_required is True


def test_removing_the_last_factor_puts_the_sessions_back_to_waiting(api, seeded, admins_must):
    token = log_in(api, "admin")["token"]
    set_up_totp(api, token)
    assert api.delete(TOTP_URL, **auth_header(token)).status_code == 204
    assert refused(get_protected(api, token))
    assert set(Session.objects.live().values_list("mfa_enrolment_required", flat=True)) == {True}
    # It can set up a new one at once.
    set_up_totp(api, token)
    assert get_protected(api, token).status_code == 200


def test_a_personal_access_token_does_not_wait(api, seeded, admins_must):
    factors = enable_totp(seeded["admin"])
    token = second_factor(api, mfa_ticket_for(api, "admin"), code=factors.next_code()).json()
    pat = api.post(
        "/api/auth/tokens/",
        {"name": "ci", "scopes": []},
        format="json",
        **auth_header(token["token"]),
    ).json()["token"]
    api.delete(TOTP_URL, **auth_header(token["token"]))
    assert Session.objects.get(kind=SessionKind.PAT).mfa_enrolment_required is False
    assert get_protected(api, pat).status_code == 200


def test_a_policy_change_applies_from_the_next_login(api, seeded, settings):
    before = log_in(api, "admin")["token"]
    settings.TESSERA = {"MFA_REQUIRED": ["Admin"]}
    assert get_protected(api, before).status_code == 200
    assert refused(get_protected(api, log_in(api, "admin")["token"]))


# --- Ways of signing in that cannot ask for a factor -----------------------------------------


def test_obtain_auth_token_refuses_a_covered_user(api, seeded, admins_must):
    response = api.post("/api-token-auth/", {"username": "admin", "password": PASSWORD})
    assert (response.status_code, response.json()["code"]) == (403, "mfa_not_supported")
    assert api.post("/api-token-auth/", {"username": "hr", "password": PASSWORD}).status_code == 200


@override_settings(TESSERA={"MFA_REQUIRED": ["Admin"], "BASIC_AUTH": True}, DEBUG=True)
def test_http_basic_refuses_a_covered_user(api, seeded):
    credentials = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    response = api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert (response.status_code, response.json()["code"]) == (403, "mfa_not_supported")


def test_the_seeded_users_still_log_in_as_before(api, seeded):
    for username in seeded:
        assert log_in(api, username)["session"]["mfa_enrolment_required"] is False
