"""An entry with ``open_session``: each external token opens one Tessera session, which is
listed, revocable by every means a session is, and refused from the next request on."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import path
from rest_framework.response import Response

from tessera import signals
from tessera.models import ExternalIdentity, RevokeReason, Session, SessionKind
from tessera.permissions import RequiresMFA, RequiresRecentAuth
from tessera.services import external_tokens
from tessera.services import sessions as session_service
from tessera.tokens import external

from .concurrency import run_together
from .conftest import (
    in_production_transactions,
    log_in,
    receiving,
    requires_postgres,
)
from .external_support import WhoAmI, assert_refused, get, linked
from .external_support import urlpatterns as external_urlpatterns

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

SESSIONS_URL = "/api/auth/sessions/"


class RecentOnly(WhoAmI):
    permission_classes = [RequiresRecentAuth]


class MFAOnly(WhoAmI):
    permission_classes = [RequiresMFA]


class Revoke(WhoAmI):
    """A project view that ends the session behind the request, as an admin action would."""

    def post(self, request):
        session_service.revoke_sessions([request.auth.session], RevokeReason.ADMIN)
        return Response(status=204)


urlpatterns = [
    *external_urlpatterns,
    path("recent/", RecentOnly.as_view()),
    path("mfa/", MFAOnly.as_view()),
    path("revoke/", Revoke.as_view()),
]


@pytest.fixture
def federated(api, issuer, trust):
    """Alice, linked at an issuer whose entry opens sessions."""
    trust(issuer, open_session=True)
    return linked(issuer)


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_token_opens_one_session_on_first_sight_and_reuses_it(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    with receiving(signals.session_created, "session") as created:
        first = get(api, token)
        second = get(api, token)
    assert first.status_code == second.status_code == 200, first.content
    session = Session.objects.get()
    assert created == [session]
    assert first.json()["session"] == second.json()["session"] == str(session.pk)
    assert session.user == federated
    assert session.kind == SessionKind.EXTERNAL
    assert session.amr == ["fed"]
    assert session.auth_time is None
    assert session.device_name == "127.0.0.1"
    assert session.expires_at == datetime.fromtimestamp(
        external.unverified_parts(token)[1]["exp"], UTC
    )
    assert session.idle_expires_at is None
    assert session.token_digest == external.session_digest(
        token, external.unverified_parts(token)[1]
    )


def test_each_token_has_its_own_session(api, issuer, federated):
    assert get(api, issuer.token(jti="a")).status_code == 200
    assert get(api, issuer.token(jti="b")).status_code == 200
    # Without a jti the token itself names its session.
    assert get(api, issuer.token(iat=int(time.time()) - 1)).status_code == 200
    assert get(api, issuer.token(iat=int(time.time()) - 2)).status_code == 200
    assert Session.objects.count() == 4


def test_one_issuers_jti_never_names_anothers_session():
    claims = {"iss": "https://a.example.test", "sub": "s", "jti": "j"}
    digest = external.session_digest("t", claims)
    assert digest != external.session_digest("t", {**claims, "iss": "https://b.example.test"})
    assert digest != external.session_digest("t", {**claims, "sub": "s2"})
    # A jti that looks like the token's own digest names a different session.
    no_jti = {"iss": claims["iss"], "sub": "s"}
    lookalike = {**no_jti, "jti": external._sha256("t")}
    assert external.session_digest("t", no_jti) != external.session_digest("t", lookalike)


def test_the_session_is_listed_and_current_for_the_token(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    response = api.get(SESSIONS_URL, **bearer(token))
    assert response.status_code == 200, response.content
    (listed,) = response.json()
    assert listed["kind"] == "external"
    assert listed["current"] is True
    assert listed["amr"] == ["fed"]


def test_logout_ends_the_session_and_the_same_token_is_refused_next(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    for _ in range(3):  # warm: the session is in the cache
        assert get(api, token).status_code == 200
    assert api.post("/api/auth/logout/", **bearer(token)).status_code == 204
    assert_refused(get(api, token), "token_revoked")
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
    # The issuer's next token is a new login here.
    assert get(api, issuer.token(jti="jti-2")).status_code == 200


def test_logout_all_ends_external_and_password_sessions(api, user, issuer, trust):
    trust(issuer, open_session=True)
    ExternalIdentity.objects.create(issuer=issuer.url, subject="user-1", user=user)
    password_token = log_in(api)["token"]
    token = issuer.token(jti="jti-1")
    assert get(api, token).status_code == 200
    assert api.post("/api/auth/logout/all/", **bearer(token)).status_code == 204
    assert_refused(get(api, token), "token_revoked")
    response = api.get(SESSIONS_URL, HTTP_AUTHORIZATION=f"Token {password_token}")
    assert response.status_code == 401
    assert not Session.objects.live().exists()


def test_delete_from_another_session_is_effective_on_the_next_request(api, user, issuer, trust):
    trust(issuer, open_session=True)
    ExternalIdentity.objects.create(issuer=issuer.url, subject="user-1", user=user)
    token = issuer.token(jti="jti-1")
    session_id = get(api, token).json()["session"]
    assert get(api, token).status_code == 200
    password_token = log_in(api)["token"]
    response = api.delete(
        f"{SESSIONS_URL}{session_id}/", HTTP_AUTHORIZATION=f"Token {password_token}"
    )
    assert response.status_code == 204
    assert_refused(get(api, token), "token_revoked")


def test_a_revocation_by_the_project_is_effective_on_the_next_request(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    assert get(api, token).status_code == 200
    assert api.post("/revoke/", **bearer(token)).status_code == 204
    assert_refused(get(api, token), "token_revoked")


def test_the_session_expires_with_the_token(api, issuer, federated, clock, settings):
    settings.TESSERA = {**settings.TESSERA, "JWT_LEEWAY": timedelta(minutes=1)}
    moment = int(clock.now.timestamp())
    token = issuer.token(jti="jti-1", iat=moment, exp=moment + 120)
    assert get(api, token).status_code == 200
    clock.advance(seconds=121)  # inside JWT_LEEWAY the token alone would still pass
    assert_refused(get(api, token), "token_expired")
    assert Session.objects.get().revoke_reason == RevokeReason.EXPIRED


def test_a_token_inside_its_leeway_opens_no_session(api, issuer, federated, clock):
    moment = int(clock.now.timestamp())
    token = issuer.token(jti="jti-1", iat=moment - 300, exp=moment - 1)
    assert_refused(get(api, token), "token_expired")
    assert not Session.objects.exists()


def test_a_warm_token_costs_no_query_and_no_write(
    api, issuer, federated, django_assert_num_queries
):
    token = issuer.token(jti="jti-1")
    assert get(api, token).status_code == 200  # opens the session
    with django_assert_num_queries(1):  # cold: the session row, with its user
        assert get(api, token).status_code == 200
    with django_assert_num_queries(0):  # warm: the cache; no link read, no write
        assert get(api, token).status_code == 200


def test_last_used_is_written_at_most_once_per_interval(api, issuer, federated, clock):
    moment = int(clock.now.timestamp())
    token = issuer.token(jti="jti-1", iat=moment, exp=moment + 3600)
    assert get(api, token).status_code == 200
    opened = Session.objects.get().last_used_at
    clock.advance(seconds=5)
    assert get(api, token).status_code == 200
    assert Session.objects.get().last_used_at == opened
    clock.advance(minutes=2)
    assert get(api, token).status_code == 200
    assert Session.objects.get().last_used_at == clock.now


def test_a_user_deactivated_later_is_refused(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    assert get(api, token).status_code == 200
    federated.is_active = False
    federated.save()  # ends the user's sessions, as for any login
    assert_refused(get(api, token), "token_revoked")
    assert Session.objects.get().revoke_reason == RevokeReason.DEACTIVATED


def test_an_unlinked_identity_opens_no_session(api, issuer, trust):
    trust(issuer, open_session=True)
    assert_refused(get(api, issuer.token()), "unknown_external_identity")
    assert not Session.objects.exists()


def test_step_up_permissions_refuse_an_external_session(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    assert api.get("/recent/", **bearer(token)).status_code == 403
    assert api.get("/mfa/", **bearer(token)).status_code == 403


def test_tessera_views_other_than_the_session_ones_refuse_the_token(api, issuer, federated):
    token = issuer.token(jti="jti-1")
    assert get(api, token).status_code == 200
    for method, url in [
        ("get", "/api/auth/me/"),
        ("post", "/api/auth/tokens/"),
        ("post", "/api/auth/reauthenticate/"),
    ]:
        response = getattr(api, method)(url, **bearer(token))
        assert response.status_code == 401, url


def test_without_the_option_nothing_is_stored_and_session_views_refuse(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    token = issuer.token(jti="jti-1")
    assert get(api, token).json()["session"] is None
    assert api.post("/api/auth/logout/", **bearer(token)).status_code == 401
    assert api.get(SESSIONS_URL, **bearer(token)).status_code == 401
    assert not Session.objects.exists()


def test_session_views_take_only_the_entries_that_open_sessions(
    api, issuer, other_issuer, trust, settings
):
    trust(issuer, other_issuer)
    entries = settings.TESSERA["TRUSTED_ISSUERS"]
    settings.TESSERA = {
        **settings.TESSERA,
        "TRUSTED_ISSUERS": [{**entries[0], "open_session": True}, entries[1]],
    }
    alice = linked(issuer)
    ExternalIdentity.objects.create(issuer=other_issuer.url, subject="user-1", user=alice)
    assert api.get(SESSIONS_URL, **bearer(issuer.token())).status_code == 200
    assert api.get(SESSIONS_URL, **bearer(other_issuer.token())).status_code == 401


def test_a_password_session_still_uses_the_session_views(api, user, issuer, trust):
    trust(issuer, open_session=True)
    token = log_in(api)["token"]
    response = api.get(SESSIONS_URL, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert response.json()[0]["current"] is True


def test_clearsessions_keeps_an_ended_session_while_its_token_is_valid(api, issuer, federated):
    token = issuer.token(jti="jti-1", exp=int(time.time()) + 3600)
    assert get(api, token).status_code == 200
    assert api.post("/api/auth/logout/", **bearer(token)).status_code == 204
    call_command("tessera_clearsessions", keep_days=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Session.objects.exists()
    assert_refused(get(api, token), "token_revoked")
    Session.objects.update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    call_command("tessera_clearsessions", keep_days=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Session.objects.exists()


def test_only_an_external_session_has_a_lookup_digest(user):
    with pytest.raises(ValueError):
        session_service.open_session(user, lookup_digest="x" * 64)
    with pytest.raises(ValueError):
        session_service.open_session(user, kind=SessionKind.EXTERNAL)


def test_the_session_limit_counts_external_sessions(api, user, issuer, trust, settings):
    trust(issuer, open_session=True)
    settings.TESSERA = {
        **settings.TESSERA,
        "TOKEN_LIMIT_PER_USER": 1,
        "TOKEN_LIMIT_POLICY": "reject",
    }
    ExternalIdentity.objects.create(issuer=issuer.url, subject="user-1", user=user)
    assert get(api, issuer.token(jti="a")).status_code == 200
    response = get(api, issuer.token(jti="b"))
    assert response.status_code == 403
    assert response.json()["code"] == "session_limit_reached"
    assert Session.objects.count() == 1


@requires_postgres
@in_production_transactions
def test_concurrent_first_requests_with_one_token_open_one_session(issuer, trust):
    from rest_framework.test import APIClient

    trust(issuer, open_session=True)
    linked(issuer)
    token = issuer.token(jti=uuid.uuid4().hex)
    entry = external.trusted_issuers()[issuer.url]
    # Keys held already, so the threads race on the session only.
    external_tokens.issuer_keys.issuer_keys(entry).key(issuer.keys[-1][0])

    def first_request(_index):
        return get(APIClient(), token).status_code

    for _ in range(3):
        statuses = run_together(8, first_request)
        assert statuses == [200] * 8, statuses
    assert Session.objects.count() == 1
    assert issuer.key_fetches() == 1


@requires_postgres
@pytest.mark.parametrize("subject", ["user\x00-1", "u" * 256, "user\ud800"])
def test_on_postgresql_an_unstorable_sub_is_a_401_and_opens_nothing(api, issuer, trust, subject):
    trust(issuer, user="create", open_session=True)
    response = get(api, issuer.token(sub=subject))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert not Session.objects.exists()
    assert not ExternalIdentity.objects.exists()
