"""Resource-server mode: access tokens of trusted issuers, against a fake issuer on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor

import jwt as pyjwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from tessera import schema_extensions  # noqa: F401  (registers the OpenAPI schemes)
from tessera.authentication import ExternalJWTAuthentication
from tessera.models import EmailAddress, ExternalIdentity
from tessera.services import external_identities, issuer_keys
from tessera.tokens import external

from .conftest import create_user
from .external_support import assert_refused, b64, forge, get, linked, urlpatterns  # noqa: F401
from .fake_issuer import FakeIssuer

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def map_by_username(claims):
    return get_user_model().objects.filter(username=claims.get("preferred_username")).first()


# --- Users --------------------------------------------------------------------------


def test_link_mode_authenticates_a_linked_user(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    response = get(api, issuer.token())
    assert response.status_code == 200, response.content
    assert response.json() == {
        "username": "alice",
        "issuer": issuer.url,
        "sub": "user-1",
        "session": None,
    }


def test_link_mode_refuses_an_unlinked_identity(api, issuer, trust):
    trust(issuer)
    create_user("alice")
    assert_refused(get(api, issuer.token()), "unknown_external_identity")
    assert not ExternalIdentity.objects.exists()


def test_create_mode_creates_and_links_on_first_sight_then_reuses(api, issuer, trust):
    trust(issuer, user="create")
    first = get(api, issuer.token(sub="new-person"))
    assert first.status_code == 200, first.content
    identity = ExternalIdentity.objects.get(issuer=issuer.url, subject="new-person")
    assert not identity.user.has_usable_password()
    again = get(api, issuer.token(sub="new-person"))
    assert again.json()["username"] == identity.user.username
    assert get_user_model().objects.count() == 1


def test_create_mode_is_not_blocked_by_a_name_computed_from_the_identity(api, issuer, trust):
    trust(issuer, user="create")
    derived = hashlib.sha256(f"{issuer.url}\nnew-person".encode()).hexdigest()[:24]
    squatter = create_user(f"ext-{derived}")
    response = get(api, issuer.token(sub="new-person"))
    assert response.status_code == 200, response.content
    user = ExternalIdentity.objects.get(subject="new-person").user
    assert user != squatter and re.fullmatch(r"ext-[0-9a-f]{24}", user.username)


def test_create_mode_draws_a_taken_name_again(api, issuer, trust, monkeypatch):
    trust(issuer, user="create")
    create_user("ext-taken")
    drawn = iter(["ext-taken", "ext-free"])
    monkeypatch.setattr(external_identities, "random_username", lambda: next(drawn))
    response = get(api, issuer.token(sub="new-person"))
    assert response.status_code == 200, response.content
    assert ExternalIdentity.objects.get().user.username == "ext-free"


def verified_locally(user):
    EmailAddress.objects.create(user=user, email=user.email, verified_at=timezone.now())
    return user


def test_create_mode_links_by_verified_email_only_when_asked(api, issuer, trust):
    alice = verified_locally(create_user("alice", email="alice@example.test"))
    trust(issuer, user="create", link_verified_email=True)
    response = get(api, issuer.token(sub="s-1", email="ALICE@example.test", email_verified=True))
    assert response.json()["username"] == "alice"
    assert ExternalIdentity.objects.get(subject="s-1").user == alice


@pytest.mark.parametrize(
    "local, claimed",
    [
        # An address nobody proved here: someone may have signed up with a victim's.
        ({"verified": False}, "alice@example.test"),
        # Look-alikes that database case rules can equate (the dotless i, the long s).
        ({"verified": True}, "al\u0131ce@example.test"),
        ({"verified": True, "is_staff": True}, "alice@example.test"),
        ({"verified": True, "is_superuser": True}, "alice@example.test"),
    ],
)
def test_no_link_to_an_account_whose_address_was_not_proved_here_or_that_is_staff(
    api, issuer, trust, local, claimed
):
    flags = {k: v for k, v in local.items() if k != "verified"}
    alice = create_user("alice", email="alice@example.test", **flags)
    if local["verified"]:
        verified_locally(alice)
    trust(issuer, user="create", link_verified_email=True)
    response = get(api, issuer.token(sub="s-2", email=claimed, email_verified=True))
    assert response.status_code == 200
    assert response.json()["username"] != "alice"
    assert ExternalIdentity.objects.get(subject="s-2").user != alice


def test_an_unverified_email_never_links_to_an_existing_account(api, issuer, trust):
    create_user("alice", email="alice@example.test")
    trust(issuer, user="create", link_verified_email=True)
    for verified in (False, "true", None):
        claims = {"email": "alice@example.test", "email_verified": verified}
        response = get(api, issuer.token(sub=f"s-{verified}", **claims))
        assert response.status_code == 200
        assert response.json()["username"] != "alice"


def test_verified_email_does_not_link_without_the_setting(api, issuer, trust):
    create_user("alice", email="alice@example.test")
    trust(issuer, user="create")
    response = get(api, issuer.token(email="alice@example.test", email_verified=True))
    assert response.json()["username"] != "alice"


def test_a_new_user_never_takes_an_address_another_account_holds(api, issuer, trust):
    alice = create_user("alice", email="Alice@Example.test")
    trust(issuer, user="create")
    response = get(api, issuer.token(sub="s-new", email="alice@example.test", email_verified=True))
    assert response.status_code == 200
    created = ExternalIdentity.objects.get(subject="s-new").user
    assert created != alice and created.email == ""
    fresh = get(api, issuer.token(sub="s-fresh", email="fresh@example.test", email_verified=True))
    assert ExternalIdentity.objects.get(subject="s-fresh").user.email == "fresh@example.test"
    assert fresh.status_code == 200


def test_dotted_path_mode_uses_the_projects_function(api, issuer, trust):
    trust(issuer, user=f"{__name__}.map_by_username")
    create_user("bob")
    assert get(api, issuer.token(preferred_username="bob")).json()["username"] == "bob"
    assert_refused(get(api, issuer.token(preferred_username="nobody")), "unknown_external_identity")


def test_inactive_users_are_refused(api, issuer, trust):
    trust(issuer)
    user = linked(issuer)
    user.is_active = False
    user.save()
    assert_refused(get(api, issuer.token()), "user_inactive")


def test_last_seen_is_written_at_most_once_per_interval(api, issuer, trust, clock):
    trust(issuer)
    linked(issuer)
    clock.advance(hours=1)
    token = issuer.token(exp=int(clock.now.timestamp()) + 300)
    assert get(api, token).status_code == 200
    seen = ExternalIdentity.objects.get().last_seen_at
    assert seen == clock.now
    clock.advance(seconds=10)
    assert get(api, token).status_code == 200
    assert ExternalIdentity.objects.get().last_seen_at == seen


# --- Roles and scopes ---------------------------------------------------------------


def test_roles_claim_feeds_has_role(api, issuer, trust):
    trust(issuer, roles_claim=["realm_access", "roles"])
    linked(issuer)
    allowed = issuer.token(realm_access={"roles": ["Manager"]})
    assert get(api, allowed, "/managers/").status_code == 200
    staff = issuer.token(realm_access={"roles": ["Staff"]})
    assert get(api, staff, "/managers/").status_code == 403
    assert get(api, issuer.token(), "/managers/").status_code == 403


def test_without_a_roles_claim_roles_are_the_users_groups(api, issuer, trust):
    trust(issuer)
    user = linked(issuer)
    token = issuer.token(roles=["Manager"])
    assert get(api, token, "/managers/").status_code == 403
    user.groups.add(Group.objects.create(name="Manager"))
    assert get(api, token, "/managers/").status_code == 200


def test_scopes_claim_feeds_has_scope(api, issuer, trust):
    trust(issuer, scopes_claim="scope")
    linked(issuer)
    assert get(api, issuer.token(scope="openid posts:read"), "/posts/").status_code == 200
    assert get(api, issuer.token(scope="openid"), "/posts/").status_code == 403
    assert get(api, issuer.token(), "/posts/").status_code == 403


# --- Keys -----------------------------------------------------------------------------


def test_keys_are_discovered_then_cached(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    for _ in range(5):
        assert get(api, issuer.token()).status_code == 200
    assert issuer.requests.count("/.well-known/openid-configuration") == 1
    assert issuer.key_fetches() == 1


def test_a_configured_jwks_uri_skips_discovery(api, issuer, trust):
    trust(issuer, jwks_uri=issuer.url + "/keys")
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    assert issuer.requests == ["/keys"]


def test_a_rotated_key_is_fetched_once(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    issuer.rotate(keep_old=False)
    assert get(api, issuer.token()).status_code == 200
    assert get(api, issuer.token()).status_code == 200
    assert issuer.key_fetches() == 2


def test_unknown_kid_refreshes_once_per_interval_then_401(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    stranger = FakeIssuer()
    stranger.keys = [("not-published", stranger.private_key())]
    forged = pyjwt.encode(
        issuer.claims(), stranger.private_key(), "RS256", headers={"kid": "not-published"}
    )
    for _ in range(3):
        assert_refused(get(api, forged))
    assert issuer.key_fetches() == 2


def test_keys_fetched_by_one_process_serve_the_others(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    issuer_keys.forget_keys()  # as another process would start: nothing held in memory
    issuer.down = True
    assert get(api, issuer.token()).status_code == 200
    assert issuer.key_fetches() == 1


def test_cached_keys_keep_working_while_the_issuer_is_down(api, issuer, trust, settings):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    issuer.stop()
    held = issuer_keys._issuer_keys[issuer.url]
    held.fetched_at -= 2 * 3600  # the keys are stale: a refetch is due and fails
    assert get(api, issuer.token()).status_code == 200
    assert_refused(get(api, forge({"alg": "RS256", "kid": "unknown"}, issuer.claims(), "c2ln")))


def test_no_keys_and_the_issuer_down_is_503(api, issuer, trust, clock):
    trust(issuer)
    linked(issuer)
    issuer.down = True
    response = get(api, issuer.token())
    assert response.status_code == 503
    assert response.json()["code"] == "issuer_unavailable"
    assert response["Retry-After"]
    issuer.down = False
    assert get(api, issuer.token()).status_code == 503  # not retried at once
    assert issuer.requests == ["/.well-known/openid-configuration"]
    clock.advance(seconds=issuer_keys.NO_KEYS_RETRY_SECONDS)
    assert get(api, issuer.token()).status_code == 200


def test_a_discovery_document_naming_another_issuer_is_refused(api, issuer, trust, settings):
    trust(issuer)
    linked(issuer)
    settings.TESSERA = {
        **settings.TESSERA,
        "TRUSTED_ISSUERS": [
            {**settings.TESSERA["TRUSTED_ISSUERS"][0], "issuer": issuer.url + "/"},
        ],
    }
    response = get(api, issuer.token(iss=issuer.url + "/"))
    assert response.status_code == 503


# --- Attacks (the whole list, in every state of the issuer: test_external_attacks.py) ---


@pytest.fixture
def victim(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    return issuer


def test_token_of_issuer_a_presented_with_issuer_bs_iss(api, issuer, other_issuer, trust):
    trust(issuer, other_issuer)
    linked(issuer)
    ExternalIdentity.objects.create(
        issuer=other_issuer.url, subject="user-1", user=get_user_model().objects.get()
    )
    assert get(api, other_issuer.token()).status_code == 200
    assert get(api, issuer.token()).status_code == 200
    # Signed by A, claiming to come from B: B's keys are tried, and none is A's.
    assert_refused(get(api, issuer.token(iss=other_issuer.url)))
    # Even with B's kid, A's signature does not verify with B's key.
    assert_refused(get(api, issuer.token(iss=other_issuer.url, kid=None, headers={})))
    forged = pyjwt.encode(
        issuer.claims(iss=other_issuer.url),
        issuer.private_key(),
        "RS256",
        headers={"kid": other_issuer.keys[-1][0]},
    )
    assert_refused(get(api, forged))


@pytest.mark.parametrize(
    "token",
    [
        "a.b.c",
        "..",
        b64(b"[" * 2_500) + ".e30.",
        b64(b'{"alg":"RS256","kid":"x"}') + "." + b64(b"[" * 2_500) + ".sig",
        "x" * 9000 + "..",
    ],
)
def test_garbage_never_500(api, victim, token):
    response = get(api, token)
    assert response.status_code == 401, response.content


def test_deeply_nested_payload_claiming_the_issuer(api, victim):
    head = b64(json.dumps({"alg": "RS256", "kid": victim.keys[-1][0]}).encode())
    nested = "[" * 2_500 + "]" * 2_500
    payload = f'{{"iss": "{victim.url}", "x": {nested}}}'
    response = get(api, f"{head}.{b64(payload.encode())}.sig")
    assert response.status_code == 401, response.content


def test_the_openapi_schema_describes_the_scheme():
    scheme = OpenApiAuthenticationExtension.get_match(ExternalJWTAuthentication())
    assert scheme.name == "externalJWT"
    assert scheme.get_security_definition(None)["bearerFormat"] == "JWT"


def test_a_symmetric_key_in_the_key_set_is_never_used(api, issuer, trust, monkeypatch):
    trust(issuer)
    linked(issuer)
    secret = b"s" * 32
    published = issuer.jwks()
    published["keys"].append({"kty": "oct", "kid": "shared", "k": b64(secret), "use": "sig"})
    monkeypatch.setattr(issuer, "jwks", lambda: published)
    token = pyjwt.encode(issuer.claims(), secret, "HS256", headers={"kid": "shared"})
    assert_refused(get(api, token))
    assert get(api, issuer.token()).status_code == 200


def test_an_empty_key_set_is_503_and_not_fetched_per_request(api, issuer, trust, monkeypatch):
    trust(issuer, jwks_uri=issuer.url + "/keys")
    linked(issuer)
    monkeypatch.setattr(issuer, "jwks", lambda: {"keys": []})
    for _ in range(3):
        assert get(api, issuer.token()).status_code == 503
    assert issuer.key_fetches() == 1


def test_concurrent_unknown_kids_fetch_once_and_the_others_do_not_wait(api, issuer, trust):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    new_kid = issuer.rotate()
    held = issuer_keys.issuer_keys(external.trusted_issuers()[issuer.url])
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: held.key(new_kid), range(8)))
    # The thread that refreshed has the new key; the others were answered from what was
    # held at that moment, the new key or none, without waiting for the fetch.
    assert any(key is not None for key in keys)
    assert get(api, issuer.token(kid=new_kid)).status_code == 200
    assert issuer.key_fetches() == 2


@pytest.mark.urls("tests.urls")
def test_the_admin_lists_and_searches_identities(client, issuer):
    admin_user = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    linked(issuer)
    client.force_login(admin_user)
    url = "/admin/tessera/externalidentity/"
    response = client.get(url, {"q": "alice"})
    assert response.status_code == 200
    assert b"user-1" in response.content
