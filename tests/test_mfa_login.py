"""A second factor as a login stage: every password login stops at mfa_required, and
mfa/authenticate/ finishes it with the ticket and a code, answering what the login
would have answered. Each bad ticket and bad code has its test."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings

from tessera import signals
from tessera.models import LoginTicket, RevokeReason, Session, SessionKind
from tessera.services.mfa import methods
from tessera.tokens import jwt as codec

from .conftest import (
    JWT_URL,
    LOGIN_URL,
    PASSWORD,
    auth_header,
    get_protected,
    post_login,
    receiving,
    with_csrf,
)
from .mfa_support import (
    MFA_AUTHENTICATE_URL,
    app_code,
    mfa_ticket,
    second_factor,
)

pytestmark = pytest.mark.django_db
SLIDING_URL = "/api/auth/jwt/sliding/"
SESSION_LOGIN_URL = "/api/auth/session/login/"


# --- The login stops ---------------------------------------------------------------


@pytest.mark.parametrize("path", [LOGIN_URL, JWT_URL, SLIDING_URL])
def test_every_login_stops_at_mfa_required_and_opens_no_session(api, alice_mfa, path):
    response = post_login(api, path=path, device_name="phone")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "mfa_required"
    assert body["methods"] == ["totp", "recovery_codes"]
    assert body["options"] == {}
    assert len(body["ticket"]) >= 43
    assert not Session.objects.exists()
    ticket = LoginTicket.objects.get()
    assert (ticket.credential, ticket.device_name, ticket.amr) == (
        {LOGIN_URL: "token", JWT_URL: "jwt", SLIDING_URL: "sliding"}[path],
        "phone",
        ["pwd"],
    )
    # Only a digest of the ticket is stored.
    assert body["ticket"] not in {ticket.digest, str(ticket.pk)}


def test_the_browser_login_stops_too(browser, alice_mfa):
    body = {"username": "alice", "password": PASSWORD}
    response = browser.post(SESSION_LOGIN_URL, body, format="json", **with_csrf(browser))
    assert (response.status_code, response.json()["code"]) == (401, "mfa_required")
    assert not Session.objects.exists()
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_a_wrong_password_is_still_invalid_credentials(api, alice_mfa):
    response = post_login(api, password="wrong")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
    assert not LoginTicket.objects.exists()


def test_users_without_a_factor_log_in_as_before(api, user):
    body = post_login(api).json()
    assert body["session"]["amr"] == ["pwd"]
    assert body["session"]["auth_time"] == body["session"]["created"]


def test_the_hasher_runs_once_per_login_and_never_for_the_second_factor(
    api, alice_mfa, hasher_calls
):
    ticket = mfa_ticket(api)
    assert hasher_calls.call_count == 1
    hasher_calls.reset_mock()
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200
    assert hasher_calls.call_count == 0


# --- mfa/authenticate/ answers what the login would have -------------------------------


def test_token_login_with_a_real_totp_code(api, alice_mfa):
    ticket = mfa_ticket(api, device_name="phone")
    response = second_factor(api, ticket, code=alice_mfa.next_code())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry", "user", "session", "device"}
    assert body["session"]["device_name"] == "phone"
    assert body["session"]["amr"] == ["pwd", "otp", "mfa"]
    assert body["session"]["current"] is True
    assert get_protected(api, body["token"]).status_code == 200
    assert LoginTicket.objects.get().used_at is not None


def test_jwt_login_carries_amr_and_auth_time(api, alice_mfa):
    body = second_factor(api, mfa_ticket(api, path=JWT_URL), code=alice_mfa.next_code()).json()
    assert set(body) == {"access", "refresh", "user", "device"}
    claims = codec.decode(body["access"], token_types=(codec.ACCESS,))
    session = Session.objects.get()
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["auth_time"] == int(session.auth_time.timestamp())
    assert get_protected(api, body["access"], "Bearer").status_code == 200


def test_sliding_login(api, alice_mfa):
    body = second_factor(api, mfa_ticket(api, path=SLIDING_URL), code=alice_mfa.next_code()).json()
    assert set(body) == {"token", "device"}
    claims = codec.decode(body["token"], token_types=(codec.SLIDING,))
    assert claims["amr"] == ["pwd", "otp", "mfa"]


def test_browser_login_sets_the_session_cookie_and_needs_csrf(browser, alice_mfa):
    csrf = with_csrf(browser)
    ticket = mfa_ticket(browser, path=SESSION_LOGIN_URL, headers=csrf)
    without = browser.post(
        MFA_AUTHENTICATE_URL, {"ticket": ticket, "code": alice_mfa.next_code()}, format="json"
    )
    assert (without.status_code, without.json()["code"]) == (403, "csrf_failed")
    response = browser.post(
        MFA_AUTHENTICATE_URL,
        {"ticket": ticket, "code": alice_mfa.next_code()},
        format="json",
        **csrf,
    )
    assert response.status_code == 200
    # The device identifier only as its HttpOnly cookie, out of the page's reach.
    assert set(response.json()) == {"user", "session"}
    assert settings.SESSION_COOKIE_NAME in response.cookies
    assert "tessera_device" in response.cookies
    assert Session.objects.get().kind == SessionKind.BROWSER
    listed = browser.get("/api/auth/sessions/")
    assert listed.status_code == 200
    assert listed.json()[0]["amr"] == ["pwd", "otp", "mfa"]


@override_settings(TESSERA={"JWT_COOKIES": True})
def test_jwt_cookie_mode_sets_the_cookies_and_needs_csrf(browser, alice_mfa):
    csrf = with_csrf(browser)
    ticket = mfa_ticket(browser, path=JWT_URL, headers=csrf)
    body = {"ticket": ticket, "code": alice_mfa.next_code()}
    assert browser.post(MFA_AUTHENTICATE_URL, body, format="json").status_code == 403
    response = browser.post(MFA_AUTHENTICATE_URL, body, format="json", **csrf)
    assert response.status_code == 200
    assert {"tessera_access", "tessera_refresh"} <= set(response.cookies)


def test_a_recovery_code_finishes_a_login_once(api, alice_mfa):
    code = alice_mfa.recovery_codes[0]
    with receiving(signals.mfa_recovery_code_used) as used:
        assert second_factor(api, mfa_ticket(api), code=code).status_code == 200
    assert [call["remaining"] for call in used] == [9]
    response = second_factor(api, mfa_ticket(api), code=code)
    assert response.status_code == 400
    assert response.json()["fields"]["code"][0]["code"] == "code_reused"


def test_recovery_codes_are_read_as_typed_give_or_take_case_and_dashes(api, alice_mfa):
    code = alice_mfa.recovery_codes[1].upper().replace("-", " ")
    assert second_factor(api, mfa_ticket(api), code=code).status_code == 200


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"username": None}})
def test_a_login_without_recovery_codes_left_offers_totp_only(api, alice_mfa):
    for code in alice_mfa.recovery_codes:
        assert second_factor(api, mfa_ticket(api), code=code).status_code == 200
    assert post_login(api).json()["methods"] == ["totp"]


# --- Bad tickets: one answer, 401 invalid_ticket -----------------------------------------


def assert_invalid_ticket(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "invalid_ticket"


def test_an_unknown_ticket(api, alice_mfa):
    assert_invalid_ticket(second_factor(api, "x" * 43, code=alice_mfa.next_code()))


def test_an_expired_ticket(api, alice_mfa, clock):
    ticket = mfa_ticket(api)
    clock.advance(minutes=5)
    assert_invalid_ticket(second_factor(api, ticket, code=app_code(alice_mfa.secret)))
    assert not Session.objects.exists()


@override_settings(TESSERA={"MFA_TICKET_LIFETIME": timedelta(minutes=1)})
def test_the_ticket_lifetime_is_a_setting(api, alice_mfa, clock):
    ticket = mfa_ticket(api)
    clock.advance(seconds=61)
    assert_invalid_ticket(second_factor(api, ticket, code=app_code(alice_mfa.secret)))


def test_a_used_ticket(api, alice_mfa, clock):
    ticket = mfa_ticket(api)
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200
    clock.advance(minutes=1)
    assert_invalid_ticket(second_factor(api, ticket, code=app_code(alice_mfa.secret)))
    assert Session.objects.count() == 1


def test_a_ticket_from_another_user_agent(api, alice_mfa):
    ticket = mfa_ticket(api, headers={"HTTP_USER_AGENT": "phone app"})
    response = api.post(
        MFA_AUTHENTICATE_URL,
        {"ticket": ticket, "code": alice_mfa.next_code()},
        format="json",
        HTTP_USER_AGENT="somebody else",
    )
    assert_invalid_ticket(response)


def test_a_ticket_from_another_address(api, alice_mfa):
    ticket = mfa_ticket(api, headers={"REMOTE_ADDR": "192.0.2.1"})
    response = api.post(
        MFA_AUTHENTICATE_URL,
        {"ticket": ticket, "code": alice_mfa.next_code()},
        format="json",
        REMOTE_ADDR="192.0.2.99",
    )
    assert_invalid_ticket(response)
    assert not Session.objects.exists()


def test_the_same_client_may_finish(api, alice_mfa):
    ticket = mfa_ticket(api, headers={"REMOTE_ADDR": "192.0.2.1", "HTTP_USER_AGENT": "phone app"})
    response = api.post(
        MFA_AUTHENTICATE_URL,
        {"ticket": ticket, "code": alice_mfa.next_code()},
        format="json",
        REMOTE_ADDR="192.0.2.1",
        HTTP_USER_AGENT="phone app",
    )
    assert response.status_code == 200
    assert response.json()["session"]["user_agent"] == "phone app"


def test_a_ticket_of_a_user_deactivated_meanwhile(api, alice_mfa, user):
    ticket = mfa_ticket(api)
    user.is_active = False
    user.save()
    assert_invalid_ticket(second_factor(api, ticket, code=alice_mfa.next_code()))


def test_a_ticket_is_no_bearer_token(api, alice_mfa):
    ticket = mfa_ticket(api)
    for keyword in ("Token", "Bearer"):
        response = get_protected(api, ticket, keyword)
        assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert api.get("/api/auth/sessions/", **auth_header(ticket)).status_code == 401


# --- Bad codes: 400 on the code field, counted against the ticket -------------------------


def code_error(response) -> str:
    assert response.status_code == 400, response.content
    return response.json()["fields"]["code"][0]["code"]


def test_a_wrong_code_leaves_the_ticket_usable(api, alice_mfa):
    ticket = mfa_ticket(api)
    wrong = "000000" if alice_mfa.next_code() != "000000" else "111111"
    with receiving(signals.mfa_failed) as failed:
        assert code_error(second_factor(api, ticket, code=wrong)) == "invalid_code"
    assert [(f["user"], f["code"], f["ticket"].pk) for f in failed] == [
        (alice_mfa.user, "invalid_code", LoginTicket.objects.get().pk)
    ]
    assert LoginTicket.objects.get().failures == 1
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200


def test_the_code_that_confirmed_the_app_is_used_up(api, alice_mfa):
    ticket = mfa_ticket(api)
    assert code_error(second_factor(api, ticket, code=app_code(alice_mfa.secret))) == "code_reused"


def test_a_code_of_an_older_step_after_a_newer_one_is_reused(api, alice_mfa, clock):
    assert second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).status_code == 200
    clock.advance(seconds=30)
    # The step before now is within the drift, but older than the one just used.
    older = app_code(alice_mfa.secret, -1)
    assert code_error(second_factor(api, mfa_ticket(api), code=older)) == "code_reused"


@pytest.mark.parametrize("steps", [-1, 1])
def test_one_step_of_drift_is_accepted(api, alice_mfa, clock, steps):
    clock.advance(minutes=1)
    code = app_code(alice_mfa.secret, steps)
    assert second_factor(api, mfa_ticket(api), code=code).status_code == 200


@pytest.mark.parametrize("steps", [-2, 2, 3])
def test_more_drift_is_refused(api, alice_mfa, clock, steps):
    clock.advance(minutes=2)
    code = app_code(alice_mfa.secret, steps)
    assert code_error(second_factor(api, mfa_ticket(api), code=code)) == "invalid_code"


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "١٢٣٤٥٦", "", "x" * 33])
def test_malformed_codes_are_refused(api, alice_mfa, code):
    response = second_factor(api, mfa_ticket(api), code=code)
    assert response.status_code == 400


def test_the_ticket_dies_after_the_last_allowed_failure(api, alice_mfa):
    ticket = mfa_ticket(api)
    wrong = "000000" if alice_mfa.next_code() != "000000" else "111111"
    for _ in range(4):
        assert code_error(second_factor(api, ticket, code=wrong)) == "invalid_code"
    assert_invalid_ticket(second_factor(api, ticket, code=wrong))
    assert_invalid_ticket(second_factor(api, ticket, code=alice_mfa.next_code()))
    assert not Session.objects.exists()


@override_settings(TESSERA={"MFA_MAX_FAILURES": 2})
def test_the_number_of_failures_is_a_setting(api, alice_mfa):
    ticket = mfa_ticket(api)
    assert code_error(second_factor(api, ticket, code="000001")) == "invalid_code"
    assert_invalid_ticket(second_factor(api, ticket, code="000001"))


@override_settings(TESSERA={"MFA_THROTTLE_RATES": {"ticket": "2/min"}})
def test_attempts_are_throttled_per_ticket(api, alice_mfa):
    ticket = mfa_ticket(api)
    for _ in range(2):
        assert second_factor(api, ticket, code="000001").status_code == 400
    response = second_factor(api, ticket, code=alice_mfa.next_code())
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    # Another ticket still gets its own attempts.
    assert second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).status_code == 200


@override_settings(TESSERA={"MFA_THROTTLE_RATES": {"user": "3/hour"}})
def test_attempts_are_throttled_per_user_across_tickets(api, alice_mfa):
    for _ in range(3):
        assert second_factor(api, mfa_ticket(api), code="000001").status_code == 400
    assert second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).status_code == 429


def test_a_body_gives_exactly_one_proof(api, alice_mfa):
    ticket = mfa_ticket(api)
    none = second_factor(api, ticket)
    assert none.json()["fields"]["code"][0]["code"] == "required"
    both = second_factor(api, ticket, code=alice_mfa.next_code(), webauthn={"id": "x"})
    assert both.json()["fields"]["non_field_errors"][0]["code"] == "invalid"
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200


def test_a_proof_this_server_cannot_check_is_refused_without_spending_the_ticket(api, alice_mfa):
    ticket = mfa_ticket(api)
    response = second_factor(api, ticket, webauthn={"id": "x"})
    assert response.json()["fields"]["webauthn"][0]["code"] == "unavailable"
    assert LoginTicket.objects.get().failures == 0


def test_a_failing_last_step_spends_neither_code_nor_ticket(api, alice_mfa, user, settings):
    """The proof, the ticket's use and the session commit together."""
    ticket = mfa_ticket(api)
    settings.TESSERA = {"TOKEN_LIMIT_PER_USER": 1}
    blocker = Session.objects.create(user=user, kind=SessionKind.TOKEN, token_digest="d" * 64)
    code = alice_mfa.next_code()
    response = second_factor(api, ticket, code=code)
    assert (response.status_code, response.json()["code"]) == (403, "session_limit_reached")
    blocker.revoked_at, blocker.revoke_reason = blocker.created_at, RevokeReason.USER
    blocker.save()
    assert second_factor(api, ticket, code=code).status_code == 200


# --- Signals and the registry seam ------------------------------------------------------


def test_signals_of_a_login(api, alice_mfa):
    with receiving(signals.mfa_ticket_issued) as issued, receiving(signals.mfa_factor_used) as used:
        ticket = mfa_ticket(api)
        second_factor(api, ticket, code=alice_mfa.next_code())
    assert [event["ticket"].pk for event in issued] == [LoginTicket.objects.get().pk]
    assert [(event["user"], event["authenticator"].type) for event in used] == [
        (alice_mfa.user, "totp")
    ]


def test_a_method_added_to_the_registry_is_offered_and_verified(api, alice_mfa, monkeypatch):
    """How another factor joins: a row in METHODS, a verifier in VERIFIERS."""
    seen = {}

    def options(request, user, ticket):
        return {"challenge": f"for {ticket.pk}"}

    def verify(request, user, value, ticket):
        seen["value"], seen["ticket"] = value, ticket.pk
        return methods.Verified(user.tessera_authenticators.get(type="totp"), ("hwk",))

    extra = methods.Method("security_key", lambda user: True, options)
    monkeypatch.setattr(methods, "METHODS", (*methods.METHODS, extra))
    monkeypatch.setitem(methods.VERIFIERS, "webauthn", verify)
    stopped = post_login(api).json()
    ticket_pk = LoginTicket.objects.get().pk
    assert stopped["methods"] == ["totp", "recovery_codes", "security_key"]
    assert stopped["options"] == {"security_key": {"challenge": f"for {ticket_pk}"}}
    response = second_factor(api, stopped["ticket"], webauthn={"assertion": 1})
    assert response.status_code == 200
    assert seen == {"value": {"assertion": 1}, "ticket": ticket_pk}
    assert response.json()["session"]["amr"] == ["pwd", "hwk", "mfa"]


# --- Ways of signing in that cannot ask for a second factor --------------------------------


def test_obtain_auth_token_refuses_a_user_with_a_factor(api, alice_mfa, hasher_calls):
    response = api.post("/api-token-auth/", {"username": "alice", "password": PASSWORD})
    assert (response.status_code, response.json()["code"]) == (403, "mfa_not_supported")
    assert hasher_calls.call_count == 1
    assert not Session.objects.exists() and not LoginTicket.objects.exists()


def test_obtain_auth_token_still_checks_the_password_first(api, alice_mfa):
    response = api.post("/api-token-auth/", {"username": "alice", "password": "wrong"})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


@override_settings(TESSERA={"BASIC_AUTH": True}, DEBUG=True)
def test_http_basic_refuses_a_user_with_a_factor(api, alice_mfa, hasher_calls):
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert (response.status_code, response.json()["code"]) == (403, "mfa_not_supported")
    assert hasher_calls.call_count == 1
