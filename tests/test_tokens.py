"""Personal access tokens: fresh login to create, shown once, scoped, listed, revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIRequestFactory

from tessera.errors import PersonalTokenLimitReached, PersonalTokenNotAllowed
from tessera.models import RevokeReason, Session, SessionKind
from tessera.services.personal_tokens import create_personal_token
from tessera.services.sessions import open_session

from .authz_support import ALL_SCOPES, pat_for, token_for
from .concurrency import run_together
from .conftest import PASSWORD, auth_header, get_protected, post_login, requires_postgres

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("app_scopes")]
URL = "/api/auth/tokens/"


@pytest.fixture
def login_token(user):
    return token_for(user)


def create(api, token, **body):
    body = {"name": "ci", "scopes": ["posts:read"], **body}
    return api.post(URL, body, format="json", **auth_header(token))


def pats():
    return Session.objects.filter(kind=SessionKind.PAT)


def test_create_shows_the_token_once_and_it_authenticates(api, user, login_token, clock):
    response = create(api, login_token, name="deploy bot", scopes=["posts:write", "posts:read"])
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "id", "name", "scopes", "created", "last_used", "expiry"}
    assert body["token"].startswith("tsr1_")
    assert body["name"] == "deploy bot"
    assert body["scopes"] == ["posts:read", "posts:write"]
    session = pats().get()
    assert (session.user, session.device_name, str(session.pk)) == (user, "deploy bot", body["id"])
    assert session.idle_expires_at is None
    assert session.expires_at == clock.now + timedelta(days=30)
    assert body["token"] not in str(Session.objects.values())
    assert get_protected(api, body["token"]).status_code == 200
    listed = api.get(URL, **auth_header(login_token)).json()
    assert [t["id"] for t in listed] == [body["id"]] and "token" not in listed[0]


def test_stale_login_needs_the_password(api, user, login_token, clock):
    clock.advance(minutes=11)
    response = create(api, login_token)
    assert response.status_code == 403
    assert response.json()["code"] == "fresh_login_required"
    assert not pats().exists()
    assert create(api, login_token, password=PASSWORD).status_code == 201


def test_a_session_just_inside_the_fresh_window_needs_no_password(api, login_token, clock):
    clock.advance(minutes=9, seconds=59)
    assert create(api, login_token).status_code == 201


def test_wrong_password_is_a_field_error_hashed_once_and_creates_nothing(
    api, login_token, clock, hasher_calls
):
    clock.advance(hours=1)
    response = create(api, login_token, password="wrong")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "password": [{"code": "incorrect", "detail": "The password is not correct."}]
    }
    assert hasher_calls.call_count == 1
    assert not pats().exists()


def test_password_confirmation_shares_the_login_throttle(api, login_token, clock, hasher_calls):
    clock.advance(hours=1)
    for _ in range(5):
        assert create(api, login_token, password="wrong").status_code == 400
    response = create(api, login_token, password=PASSWORD)
    assert response.status_code == 429
    assert hasher_calls.call_count == 5  # the throttled attempt never reached the hasher
    assert not pats().exists()
    login = post_login(api)
    assert login.status_code == 429


def test_a_pat_cannot_create_list_or_revoke_tokens(api, user):
    pat = pat_for(user, ALL_SCOPES)
    target = pat_for(user, [])
    target_id = Session.objects.get(kind=SessionKind.PAT, scopes=[]).pk
    for response in [
        create(api, pat, password=PASSWORD),
        api.get(URL, **auth_header(pat)),
        api.delete(f"{URL}{target_id}/", **auth_header(pat)),
    ]:
        assert response.status_code == 403
        assert response.json()["code"] == "personal_access_token_not_allowed"
    assert pats().count() == 2
    assert get_protected(api, target).status_code == 200


def test_the_service_refuses_a_pat_whatever_the_view(user):
    request = APIRequestFactory().post(URL)
    request.user, request.auth = user, Session(user=user, kind=SessionKind.PAT)
    with pytest.raises(PersonalTokenNotAllowed):
        create_personal_token(request, name="x", scopes=[], lifetime=None)


def test_anonymous_gets_401(api):
    assert api.get(URL).status_code == 401
    assert api.post(URL, {}, format="json").status_code == 401


def only_reading(user):
    return {"read", "posts:read"}


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"scopes": ["nope"]}, "scopes", "invalid_choice"),
        ({"scopes": ["posts:write"]}, "scopes", "not_held"),
        ({"name": ""}, "name", "blank"),
        ({"name": "x" * 101}, "name", "max_length"),
        ({"scopes": "read"}, "scopes", "not_a_list"),
        ({"expires_in": 59}, "expires_in", "min_value"),
        ({"expires_in": 366 * 86400}, "expires_in", "max_value"),
        ({"expires_in": 10**30}, "expires_in", "max_value"),
        ({"expires_in": None}, "expires_in", "null"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_created(api, login_token, settings, body, field, code):
    settings.TESSERA = {**settings.TESSERA, "USER_SCOPES": f"{__name__}.only_reading"}
    response = create(api, login_token, **body)
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["fields"][field]] == [code]
    assert not pats().exists()


def test_expiry_is_chosen_and_bounded(api, login_token, clock, settings):
    assert create(api, login_token, expires_in=3600).status_code == 201
    assert pats().get().expires_at == clock.now + timedelta(hours=1)
    settings.TESSERA = {**settings.TESSERA, "PAT_MAX_TTL": None}
    response = create(api, login_token, name="forever", expires_in=None)
    assert response.status_code == 201 and response.json()["expiry"] is None
    assert pats().get(device_name="forever").expires_at is None


def test_default_lifetime_is_capped_by_the_maximum(api, login_token, clock, settings):
    settings.TESSERA = {**settings.TESSERA, "PAT_MAX_TTL": timedelta(days=7)}
    assert create(api, login_token).status_code == 201
    assert pats().get().expires_at == clock.now + timedelta(days=7)


def test_a_pat_does_not_slide_and_stops_at_its_expiry(api, user, login_token, clock):
    token = create(api, login_token, expires_in=3600).json()["token"]
    expires_at = pats().get().expires_at
    clock.advance(minutes=30)
    assert get_protected(api, token).status_code == 200
    session = pats().get()
    assert session.last_used_at == clock.now
    assert (session.expires_at, session.idle_expires_at) == (expires_at, None)
    clock.advance(minutes=31)
    response = get_protected(api, token)
    assert response.status_code == 401 and response.json()["code"] == "token_expired"


def test_list_shows_only_my_live_pats_with_last_used(api, user, other_user, login_token, clock):
    mine = create(api, login_token, name="mine").json()
    revoked = create(api, login_token, name="revoked").json()
    api.delete(f"{URL}{revoked['id']}/", **auth_header(login_token))
    pat_for(other_user, [])
    clock.advance(minutes=5)
    get_protected(api, mine["token"])
    listed = api.get(URL, **auth_header(login_token)).json()
    assert [t["name"] for t in listed] == ["mine"]
    assert listed[0]["last_used"] == clock.now.isoformat().replace("+00:00", "Z")


def test_revoke_mine_and_404_for_everything_else(api, user, other_user, login_token):
    mine = create(api, login_token).json()
    pat_for(other_user, [])
    theirs = Session.objects.get(user=other_user)
    login_session = Session.objects.get(user=user, kind=SessionKind.TOKEN)
    for target in [theirs.pk, login_session.pk, "not-a-uuid"]:
        assert api.delete(f"{URL}{target}/", **auth_header(login_token)).status_code == 404
    assert Session.objects.live().count() == 3
    assert api.delete(f"{URL}{mine['id']}/", **auth_header(login_token)).status_code == 204
    assert pats().get(user=user).revoke_reason == RevokeReason.USER
    assert get_protected(api, mine["token"]).status_code == 401
    # Idempotent, like DELETE sessions/<id>/: a retry finishes a revocation.
    assert api.delete(f"{URL}{mine['id']}/", **auth_header(login_token)).status_code == 204


def test_the_token_limit_counts_live_pats_only(api, login_token, settings):
    settings.TESSERA = {**settings.TESSERA, "PAT_LIMIT_PER_USER": 2}
    first = create(api, login_token).json()
    assert create(api, login_token).status_code == 201
    response = create(api, login_token)
    assert response.status_code == 403
    assert response.json()["code"] == "personal_token_limit_reached"
    api.delete(f"{URL}{first['id']}/", **auth_header(login_token))
    assert create(api, login_token).status_code == 201
    assert pats().live().count() == 2


def test_pats_do_not_count_against_the_login_session_limit(api, user, login_token, settings):
    settings.TESSERA = {**settings.TESSERA, "TOKEN_LIMIT_PER_USER": 1}
    assert create(api, login_token).status_code == 201
    assert create(api, login_token).status_code == 201


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_creations_never_pass_the_limit(user, settings, attempt):
    settings.TESSERA = {**settings.TESSERA, "PAT_LIMIT_PER_USER": 3}
    login = open_session(user).session

    def create_one(index: int):
        request = APIRequestFactory().post(URL)
        request.user, request.auth = user, login
        return create_personal_token(
            request, name=f"t{index}", scopes=["read"], lifetime=timedelta(days=1)
        )

    results = run_together(12, create_one)
    assert pats().live().filter(user=user).count() == 3
    assert sum(isinstance(r, PersonalTokenLimitReached) for r in results) == 9
