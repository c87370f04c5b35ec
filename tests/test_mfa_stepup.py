"""Step-up: sessions record amr and auth_time; RequiresRecentAuth, RequiresMFA and
reauthenticate/; Tessera's sensitive endpoints ask for a recent authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import override_settings
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from tessera import signals
from tessera.models import PendingCacheInvalidation, RevokeReason, Session, SessionKind
from tessera.permissions import RequiresMFA, RequiresRecentAuth
from tessera.services.sessions import open_session, revoke_user_sessions, update_live_sessions
from tessera.tokens import jwt as codec

from .conftest import JWT_URL, PASSWORD, auth_header, failing, post_login, receiving
from .mfa_support import REAUTHENTICATE_URL, app_code, mfa_ticket, second_factor

pytestmark = pytest.mark.django_db


class RecentOnly(APIView):
    permission_classes = [IsAuthenticated, RequiresRecentAuth]

    def get(self, request):
        return Response({})


class RecentMinute(RecentOnly):
    permission_classes = [IsAuthenticated, RequiresRecentAuth(max_age=timedelta(minutes=1))]


class MFAOnly(RecentOnly):
    permission_classes = [IsAuthenticated, RequiresMFA]


def call(view: type[APIView], token: str, keyword: str = "Token"):
    request = APIRequestFactory().get("/guarded/", **auth_header(token, keyword))
    return view.as_view()(request)


def refusal(response) -> tuple[int, str]:
    return response.status_code, response.data["code"] if response.status_code >= 400 else ""


def reauthenticate(api, token: str, keyword: str = "Token", **body):
    return api.post(REAUTHENTICATE_URL, body, format="json", **auth_header(token, keyword))


# --- What sessions record -------------------------------------------------------------


def test_a_password_login_records_pwd_and_now(api, user, login, clock):
    session = login()["session"]
    assert session["amr"] == ["pwd"]
    assert session["auth_time"] == clock.now.isoformat().replace("+00:00", "Z")
    assert session["mfa_enrolment_required"] is False


def test_personal_access_tokens_record_no_authentication(api, user, login):
    token = login()["token"]
    api.post("/api/auth/tokens/", {"name": "ci", "scopes": []}, format="json", **auth_header(token))
    pat = Session.objects.get(kind=SessionKind.PAT)
    assert (pat.amr, pat.auth_time) == ([], None)


# --- RequiresRecentAuth ------------------------------------------------------------------


def test_a_fresh_login_is_recent_until_the_max_age(user, login, clock):
    token = login()["token"]
    assert call(RecentOnly, token).status_code == 200
    clock.advance(minutes=5)
    assert call(RecentOnly, token).status_code == 200
    clock.advance(seconds=1)
    assert refusal(call(RecentOnly, token)) == (403, "reauthentication_required")


def test_the_permission_takes_its_own_max_age(user, login, clock):
    token = login()["token"]
    clock.advance(seconds=61)
    assert refusal(call(RecentMinute, token)) == (403, "reauthentication_required")
    assert call(RecentOnly, token).status_code == 200


@override_settings(TESSERA={"MFA_RECENT_AUTH_MAX_AGE": timedelta(seconds=30)})
def test_the_default_max_age_is_a_setting(user, login, clock):
    token = login()["token"]
    clock.advance(seconds=31)
    assert call(RecentOnly, token).status_code == 403


@pytest.mark.parametrize("max_age", [timedelta(0), 300, "5m"])
def test_a_max_age_must_be_a_positive_timedelta(max_age):
    with pytest.raises(TypeError):
        RequiresRecentAuth(max_age=max_age)


def test_sessions_from_before_step_up_records_are_never_recent(user):
    issued = open_session(user)
    Session.objects.filter(pk=issued.session.pk).update(auth_time=None, amr=[])
    assert refusal(call(RecentOnly, issued.token)) == (403, "reauthentication_required")


def test_a_personal_access_token_is_never_recent(user):
    pat = open_session(user, kind=SessionKind.PAT, is_login=False, amr=())
    assert call(RecentOnly, pat.token).status_code == 403


def test_anonymous_requests_are_401(db):
    assert call(RecentOnly, "").status_code == 401


# --- reauthenticate/ --------------------------------------------------------------------


def test_the_password_renews_auth_time_hashing_once(api, user, login, clock, hasher_calls):
    token = login()["token"]
    clock.advance(minutes=30)
    assert call(RecentOnly, token).status_code == 403
    hasher_calls.reset_mock()
    assert reauthenticate(api, token, password=PASSWORD).status_code == 204
    assert hasher_calls.call_count == 1
    session = Session.objects.get()
    assert (session.auth_time, session.amr) == (clock.now, ["pwd"])
    assert call(RecentOnly, token).status_code == 200


def test_a_wrong_password_renews_nothing_and_hashes_once(api, user, login, clock, hasher_calls):
    token = login()["token"]
    clock.advance(minutes=30)
    hasher_calls.reset_mock()
    response = reauthenticate(api, token, password="wrong")
    assert response.status_code == 400
    assert response.json()["fields"]["password"][0]["code"] == "wrong_password"
    assert hasher_calls.call_count == 1
    assert call(RecentOnly, token).status_code == 403


def test_reauthenticating_with_a_code(api, alice_mfa, clock):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    clock.advance(hours=1)
    assert call(RecentOnly, token).status_code == 403
    with receiving(signals.mfa_factor_used, "authenticator") as used:
        assert reauthenticate(api, token, code=app_code(alice_mfa.secret)).status_code == 204
    assert [a.type for a in used] == ["totp"]
    session = Session.objects.get()
    assert (session.auth_time, session.amr) == (clock.now, ["pwd", "otp", "mfa"])
    assert call(RecentOnly, token).status_code == 200


def test_a_wrong_code_does_not_reauthenticate(api, alice_mfa, clock):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    clock.advance(hours=1)
    with receiving(signals.mfa_failed, "code") as failed:
        response = reauthenticate(api, token, code=app_code(alice_mfa.secret, 5))
    assert response.json()["fields"]["code"][0]["code"] == "invalid_code"
    assert failed == ["invalid_code"]
    assert call(RecentOnly, token).status_code == 403


def test_a_reused_code_does_not_reauthenticate(api, alice_mfa, clock):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    clock.advance(minutes=10)
    assert reauthenticate(api, token, code=alice_mfa.next_code()).status_code == 204
    clock.advance(seconds=1)
    response = reauthenticate(api, token, code=app_code(alice_mfa.secret))
    assert response.json()["fields"]["code"][0]["code"] == "code_reused"


def test_a_recovery_code_reauthenticates_once(api, alice_mfa):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    code = alice_mfa.recovery_codes[0]
    assert reauthenticate(api, token, code=code).status_code == 204
    assert reauthenticate(api, token, code=code).status_code == 400


def test_a_body_gives_exactly_one_way(api, alice_mfa):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    assert reauthenticate(api, token).json()["fields"]["password"][0]["code"] == "required"
    both = reauthenticate(api, token, password=PASSWORD, code="123456")
    assert both.json()["fields"]["non_field_errors"][0]["code"] == "invalid"


@override_settings(TESSERA={"MFA_THROTTLE_RATES": {"user": "3/hour"}})
def test_codes_are_throttled_per_user(api, alice_mfa):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.recovery_codes[0]).json()["token"]
    assert reauthenticate(api, token, code="000001").status_code == 400
    assert reauthenticate(api, token, code="000001").status_code == 400
    assert reauthenticate(api, token, code=alice_mfa.next_code()).status_code == 429


def test_a_personal_access_token_cannot_reauthenticate(api, user):
    pat = open_session(user, kind=SessionKind.PAT, is_login=False, amr=())
    response = reauthenticate(api, pat.token, password=PASSWORD)
    assert (response.status_code, response.json()["code"]) == (
        403,
        "personal_access_token_not_allowed",
    )


def test_reauthentication_drops_the_cached_copy(api, user, login, clock):
    token = login()["token"]
    assert call(RecentOnly, token).status_code == 200  # cached from here
    session = Session.objects.get()
    key = "tessera:session:" + session.token_digest
    assert caches["default"].get(key) is not None
    clock.advance(minutes=10)
    reauthenticate(api, token, password=PASSWORD)
    assert caches["default"].get(key) is None
    assert call(RecentOnly, token).status_code == 200


def test_with_the_cache_down_reauthentication_rolls_back_with_503(
    api, user, login, clock, monkeypatch, settings
):
    # No last-used write on the way in: its own eviction would fail first.
    settings.TESSERA = {"MIN_REFRESH_INTERVAL": timedelta(hours=1)}
    token = login()["token"]
    before = Session.objects.get().auth_time
    clock.advance(minutes=10)
    monkeypatch.setattr(caches["default"], "delete_many", failing(ConnectionError("down")))
    response = reauthenticate(api, token, password=PASSWORD)
    assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")
    assert Session.objects.get().auth_time == before
    assert not PendingCacheInvalidation.objects.exists()


def test_a_session_revoked_behind_the_cache_is_tombstoned_again(user, login):
    token = login()["token"]
    call(RecentOnly, token)
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).update(revoked_at=session.created_at)
    assert update_live_sessions([session], amr=["pwd", "otp"]) == 0
    assert caches["default"].get("tessera:session:" + session.token_digest) == "revoked"
    assert call(RecentOnly, token).status_code == 401


# --- JWT: the row decides, the claims are a copy -----------------------------------------


@override_settings(TESSERA={"JWT_ACCESS_LIFETIME": timedelta(hours=1)})
def test_a_refreshed_access_token_carries_the_new_auth_time(api, jwt_login, clock):
    pair = jwt_login()
    clock.advance(minutes=10)
    assert call(RecentOnly, pair["access"], "Bearer").status_code == 403
    assert reauthenticate(api, pair["access"], "Bearer", password=PASSWORD).status_code == 204
    # The old access token's claim is a copy; the session row decides.
    assert call(RecentOnly, pair["access"], "Bearer").status_code == 200
    old = codec.decode(pair["access"], token_types=(codec.ACCESS,), verify_exp=False)
    fresh = api.post("/api/auth/jwt/refresh/", {"refresh": pair["refresh"]}, format="json")
    claims = codec.decode(fresh.json()["access"], token_types=(codec.ACCESS,))
    assert claims["auth_time"] == int(clock.now.timestamp()) > old["auth_time"]


@override_settings(
    TESSERA={"JWT_REVOCATION_CHECK": False, "JWT_ACCESS_LIFETIME": timedelta(hours=1)}
)
def test_stateless_jwt_reads_the_session_row_too(api, user, clock):
    access = post_login(api, path=JWT_URL).json()["access"]
    clock.advance(minutes=10)
    assert call(RecentOnly, access, "Bearer").status_code == 403
    assert reauthenticate(api, access, "Bearer", password=PASSWORD).status_code == 204
    assert call(RecentOnly, access, "Bearer").status_code == 200


def forging_claims(user, session) -> dict:
    return {"amr": ["hwk", "mfa"], "auth_time": 0, "tier": "gold"}


def test_the_claims_hook_cannot_forge_authentication_claims(api, user, settings):
    settings.TESSERA = {"JWT_CLAIMS_HOOK": "tests.test_mfa_stepup.forging_claims"}
    access = post_login(api, path=JWT_URL).json()["access"]
    claims = codec.decode(access, token_types=(codec.ACCESS,))
    assert (claims["amr"], claims["tier"]) == (["pwd"], "gold")
    assert claims["auth_time"] > 0


# --- RequiresMFA --------------------------------------------------------------------------


def test_a_password_only_session_is_refused_until_it_steps_up(api, alice_mfa, user):
    password_only = open_session(user)
    assert refusal(call(MFAOnly, password_only.token)) == (403, "mfa_required")
    code = alice_mfa.next_code()
    assert reauthenticate(api, password_only.token, code=code).status_code == 204
    assert Session.objects.get(pk=password_only.session.pk).amr == ["pwd", "otp", "mfa"]
    assert call(MFAOnly, password_only.token).status_code == 200


def test_a_second_factor_login_satisfies_it(api, alice_mfa):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    assert call(MFAOnly, token).status_code == 200


def test_a_user_without_a_factor_cannot_satisfy_it(api, user, login):
    token = login()["token"]
    assert reauthenticate(api, token, password=PASSWORD).status_code == 204
    assert call(MFAOnly, token).status_code == 403


# --- Tessera's sensitive endpoints -----------------------------------------------------------


@pytest.fixture
def stale_token(api, user, login, clock) -> str:
    token = login()["token"]
    clock.advance(minutes=6)
    return token


def test_closing_the_account_needs_a_recent_authentication(api, stale_token):
    delete = {"password": PASSWORD}
    response = api.delete("/api/auth/me/", delete, format="json", **auth_header(stale_token))
    assert (response.status_code, response.json()["code"]) == (403, "reauthentication_required")
    reauthenticate(api, stale_token, password=PASSWORD)
    response = api.delete("/api/auth/me/", delete, format="json", **auth_header(stale_token))
    assert response.status_code == 204


def test_changing_the_address_needs_a_recent_authentication(api, stale_token):
    body = {"email": "new@example.com", "current_password": PASSWORD}
    response = api.patch("/api/auth/me/", body, format="json", **auth_header(stale_token))
    assert (response.status_code, response.json()["code"]) == (403, "reauthentication_required")
    # Other profile fields do not.
    name = {"first_name": "Alice"}
    assert (
        api.patch("/api/auth/me/", name, format="json", **auth_header(stale_token)).status_code
        == 200
    )
    reauthenticate(api, stale_token, password=PASSWORD)
    response = api.patch("/api/auth/me/", body, format="json", **auth_header(stale_token))
    assert response.status_code == 200


def test_a_personal_access_token_needs_a_recent_authentication_or_the_password(
    api, stale_token, clock
):
    clock.advance(minutes=5)  # past PAT_FRESH_LOGIN too
    body = {"name": "ci", "scopes": []}
    response = api.post("/api/auth/tokens/", body, format="json", **auth_header(stale_token))
    assert response.json()["code"] == "fresh_login_required"
    reauthenticate(api, stale_token, password=PASSWORD)
    response = api.post("/api/auth/tokens/", body, format="json", **auth_header(stale_token))
    assert response.status_code == 201


def test_with_a_second_factor_the_password_alone_mints_no_token(api, alice_mfa, clock):
    token = second_factor(api, mfa_ticket(api), code=alice_mfa.next_code()).json()["token"]
    clock.advance(minutes=11)
    body = {"name": "ci", "scopes": [], "password": PASSWORD}
    response = api.post("/api/auth/tokens/", body, format="json", **auth_header(token))
    assert (response.status_code, response.json()["code"]) == (403, "fresh_login_required")
    assert "reauthenticate" in response.json()["detail"]
    reauthenticate(api, token, code=app_code(alice_mfa.secret))
    del body["password"]
    assert (
        api.post("/api/auth/tokens/", body, format="json", **auth_header(token)).status_code == 201
    )


def test_a_user_with_a_second_factor_cannot_step_up_with_the_password_alone(
    api, alice_mfa, clock, hasher_calls
):
    """Else a stolen session and a phished password could remove the factor."""
    ticket = mfa_ticket(api)
    token = second_factor(api, ticket, code=alice_mfa.next_code()).json()["token"]
    session = Session.objects.get(kind=SessionKind.TOKEN)
    clock.advance(hours=2)
    hasher_calls.reset_mock()
    response = api.post(
        REAUTHENTICATE_URL, {"password": PASSWORD}, format="json", **auth_header(token)
    )
    assert response.status_code == 400
    assert response.json()["fields"]["password"][0]["code"] == "second_factor_required"
    assert hasher_calls.call_count == 0
    assert Session.objects.get(pk=session.pk).auth_time == session.auth_time
    refused = api.delete("/api/auth/mfa/totp/", **auth_header(token))
    assert refused.json()["code"] == "reauthentication_required"


def test_setting_up_an_authenticator_app_needs_a_recent_authentication(api, user, login, clock):
    token = login()["token"]
    clock.advance(hours=2)
    refused = api.post("/api/auth/mfa/totp/", **auth_header(token))
    assert refused.status_code == 403
    assert refused.json()["code"] == "reauthentication_required"
    assert not user.tessera_authenticators.exists()
    assert (
        api.post(
            REAUTHENTICATE_URL, {"password": PASSWORD}, format="json", **auth_header(token)
        ).status_code
        == 204
    )
    assert api.post("/api/auth/mfa/totp/", **auth_header(token)).status_code == 200


def test_a_password_change_ends_logins_waiting_for_their_second_factor(api, alice_mfa):
    ticket = mfa_ticket(api)
    alice_mfa.user.set_password("another long passphrase")
    alice_mfa.user.save()
    revoke_user_sessions(alice_mfa.user, RevokeReason.PASSWORD_CHANGED)
    response = second_factor(api, ticket, code=alice_mfa.next_code())
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_ticket"
