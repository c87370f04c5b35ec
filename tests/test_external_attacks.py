"""Every attack on ExternalJWTAuthentication is a 401, never a 500 nor a 200: with the
issuer up, with it down while its (stale) keys are held, and with it down before any key
was fetched. A token that can be refused without a key is refused then too; one that
needs the key to be judged gets 503 ``issuer_unavailable``, never a 401 a client would
take for "log in again" nor a pass. Nothing is stored for any of them."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model

from tessera.models import ExternalIdentity, Session
from tessera.services import issuer_keys
from tessera.tokens import external

from .external_support import b64, forge, get, linked, urlpatterns  # noqa: F401
from .fake_issuer import FakeIssuer

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

UP, DOWN, DOWN_BEFORE_ANY_KEY = "up", "down, keys held", "down, no key held yet"


@functools.cache
def stranger_key():
    return FakeIssuer().private_key()


@dataclass(frozen=True)
class Attack:
    make: Callable[[FakeIssuer, FakeIssuer, FakeIssuer], str]  # (victim, other, attacker)
    code: str = "invalid_token"
    # Judged only with the issuer's key: with none held and the issuer down, 503.
    needs_key: bool = False


def kid(fake) -> str:
    return fake.keys[-1][0]


def signed(fake, claims: dict, *, key=None, **headers) -> str:
    return pyjwt.encode(
        claims, key or fake.private_key(), "RS256", headers={"kid": kid(fake), **headers}
    )


def without(fake, name: str) -> str:
    claims = fake.claims()
    del claims[name]
    return signed(fake, claims)


def hs256_with_public_key(fake) -> str:
    public_pem = (
        fake.private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = forge({"alg": "HS256", "kid": kid(fake)}, fake.claims()).rstrip(".")
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def flipped(token: str) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"


def in_an_hour() -> int:
    return int(time.time()) + 3600


def an_hour_ago() -> int:
    return int(time.time()) - 3600


ATTACKS = {
    "alg none": Attack(lambda v, o, a: forge({"alg": "none", "kid": kid(v)}, v.claims())),
    "alg None": Attack(lambda v, o, a: forge({"alg": "None", "kid": kid(v)}, v.claims())),
    "HS256 signed with the issuer's public key": Attack(lambda v, o, a: hs256_with_public_key(v)),
    "no kid": Attack(lambda v, o, a: pyjwt.encode(v.claims(), v.private_key(), "RS256")),
    "unknown kid": Attack(
        lambda v, o, a: pyjwt.encode(
            v.claims(), stranger_key(), "RS256", headers={"kid": "not-published"}
        ),
        needs_key=True,
    ),
    "flipped signature": Attack(lambda v, o, a: flipped(v.token()), needs_key=True),
    "untrusted iss": Attack(lambda v, o, a: v.token(iss="https://evil.example.test")),
    "wrong aud": Attack(lambda v, o, a: v.token(aud="https://other.example.test")),
    "aud of the wrong type": Attack(lambda v, o, a: v.token(aud=[1, True])),
    "expired": Attack(
        lambda v, o, a: v.token(iat=an_hour_ago() - 60, exp=an_hour_ago()), "token_expired"
    ),
    "nbf in the future": Attack(lambda v, o, a: v.token(nbf=in_an_hour())),
    "iat in the future": Attack(lambda v, o, a: v.token(iat=in_an_hour())),
    "no sub": Attack(lambda v, o, a: without(v, "sub")),
    "no exp": Attack(lambda v, o, a: without(v, "exp")),
    # Signed by A, claiming to come from B: B's keys alone are tried.
    "A's token with B's iss": Attack(lambda v, o, a: v.token(iss=o.url), needs_key=True),
    "A's token with B's iss and kid": Attack(
        lambda v, o, a: signed(o, v.claims(iss=o.url), key=v.private_key()), needs_key=True
    ),
    # Keys named or carried by the token itself are never fetched nor used.
    **{
        f"{name} header": Attack(
            functools.partial(
                lambda name, v, o, a: pyjwt.encode(
                    v.claims(),
                    a.private_key(),
                    "RS256",
                    headers={
                        "kid": kid(a),
                        name: (a.jwks()["keys"][0] if name == "jwk" else a.url + "/keys"),
                    },
                ),
                name,
            ),
            needs_key=True,
        )
        for name in ("jwk", "jku", "x5u")
    },
    # Numeric dates: finite numbers only (JSON parsers accept NaN and Infinity).
    **{
        f"exp {label}": Attack(lambda v, o, a, value=value: v.token(exp=value))
        for label, value in {
            "NaN": float("nan"),
            "Infinity": float("inf"),
            "-Infinity": float("-inf"),
            "true": True,
            "a string": str(in_an_hour()),
            "past year 9999": 10**20,
            "1e300": 1e300,
            "negative": -1,
            "null": None,
        }.items()
    },
    "nbf NaN": Attack(lambda v, o, a: v.token(nbf=float("nan"))),
    "nbf false": Attack(lambda v, o, a: v.token(nbf=False)),
    "iat Infinity": Attack(lambda v, o, a: v.token(iat=float("inf"))),
    "iat true": Attack(lambda v, o, a: v.token(iat=True)),
    "iat a string": Attack(lambda v, o, a: v.token(iat="0")),
    # Subjects the identity table cannot hold (PostgreSQL refuses NUL in text).
    **{
        f"sub {label}": Attack(lambda v, o, a, value=value: v.token(sub=value))
        for label, value in {
            "with NUL": "user\x00-1",
            "with a control character": "user\x1b[2J",
            "with DEL": "user\x7f",
            "with a C1 control": "user\x85",
            "with a lone surrogate": "user\ud800",
            "of 256 characters": "u" * 256,
            "empty": "",
            "a number": 1,
            "a list": ["user-1"],
        }.items()
    },
}


@pytest.fixture(scope="module")
def matrix_issuers():
    """The victim, a second trusted issuer and the attacker's, for the whole matrix: their
    keys take a while to generate. Trusting them anew in each test forgets the keys
    Tessera held, and the cache is emptied between tests."""
    fakes = [FakeIssuer().start() for _ in range(3)]
    yield fakes
    for fake in fakes:
        fake.stop()


@pytest.fixture
def attacker(matrix_issuers):
    return matrix_issuers[2]


@pytest.fixture(params=[UP, DOWN, DOWN_BEFORE_ANY_KEY])
def state(request):
    return request.param


@pytest.fixture
def scene(api, matrix_issuers, trust, state):
    """Both issuers trusted, creating users on first sight (so a token let through would
    leave a row behind), each in ``state``."""
    for fake in matrix_issuers:
        fake.down = False
        fake.requests.clear()
    issuer, second_issuer, _ = matrix_issuers
    trust(issuer, second_issuer, user="create")
    alice = linked(issuer)
    ExternalIdentity.objects.create(issuer=second_issuer.url, subject="user-1", user=alice)
    if state != DOWN_BEFORE_ANY_KEY:
        assert get(api, issuer.token()).status_code == 200
        assert get(api, second_issuer.token()).status_code == 200
    if state != UP:
        for fake in (issuer, second_issuer):
            fake.down = True
            # Stale, so the attack finds a refresh due, and the refresh fails.
            issuer_keys.issuer_keys(external.trusted_issuers()[fake.url]).fetched_at -= 7200
    return issuer, second_issuer


def stored_rows() -> tuple[int, int, int]:
    return (
        get_user_model().objects.count(),
        ExternalIdentity.objects.count(),
        Session.objects.count(),
    )


@pytest.mark.parametrize("name", ATTACKS)
def test_every_attack_is_refused_whatever_the_issuers_state(api, scene, state, attacker, name):
    attack = ATTACKS[name]
    victim, other = scene
    before = stored_rows()
    response = get(api, attack.make(victim, other, attacker))
    if state == DOWN_BEFORE_ANY_KEY and attack.needs_key:
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "issuer_unavailable"
        assert response["Retry-After"]
    else:
        assert response.status_code == 401, response.content
        assert response.json()["code"] == attack.code
        assert response["WWW-Authenticate"]
    assert stored_rows() == before
    assert attacker.requests == []


def test_a_token_refused_without_its_key_costs_no_fetch(api, issuer, trust):
    trust(issuer)
    for name, attack in ATTACKS.items():
        if not attack.needs_key:
            assert get(api, attack.make(issuer, issuer, issuer)).status_code == 401, name
    assert issuer.requests == []


def test_the_subject_limit_is_the_identity_tables(api, issuer, trust):
    field = ExternalIdentity._meta.get_field("subject")
    assert external.MAX_SUBJECT_LENGTH == field.max_length
    trust(issuer, user="create")
    longest = "u" * field.max_length
    assert get(api, issuer.token(sub=longest)).status_code == 200
    assert ExternalIdentity.objects.get().subject == longest


# --- Configured values are compared with claims type-exactly -------------------------

REQUIRED = {"token_use": "access", "tier": 1, "beta": True, "groups": ["staff"], "ratio": 0.5}


@pytest.mark.parametrize(
    "claims",
    [
        {"tier": True},
        {"tier": 1.0},
        {"tier": "1"},
        {"beta": 1},
        {"beta": "true"},
        {"groups": "staff"},
        {"groups": [["staff"]]},
        {"groups": ["staff", "other"]},
        {"ratio": "0.5"},
        {"token_use": ["access"]},
    ],
)
def test_required_claims_are_compared_type_exactly(api, issuer, trust, claims):
    trust(issuer, required_claims=REQUIRED)
    linked(issuer)
    assert get(api, issuer.token(**REQUIRED)).status_code == 200
    response = get(api, issuer.token(**{**REQUIRED, **claims}))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_required_claim_absent_is_refused(api, issuer, trust):
    trust(issuer, required_claims={"token_use": "access", "nothing": None})
    linked(issuer)
    assert get(api, issuer.token(token_use="access", nothing=None)).status_code == 200
    assert get(api, issuer.token(token_use="access")).status_code == 401


@pytest.mark.parametrize("client_id", [123, True, ["123"], None])
def test_an_audience_claim_of_another_type_is_refused(api, issuer, trust, client_id):
    trust(issuer, audience="123", audience_claim="client_id")
    linked(issuer)
    assert get(api, issuer.token(aud=None, client_id="123")).status_code == 200
    assert get(api, issuer.token(aud=None, client_id=client_id)).status_code == 401


def test_verified_email_is_the_boolean_true_only(api, issuer, trust):
    trust(issuer, user="create")
    for index, verified in enumerate((1, "true", 1.0)):
        response = get(
            api, issuer.token(sub=f"s-{index}", email="x@example.test", email_verified=verified)
        )
        assert response.status_code == 200
    assert not get_user_model().objects.filter(email="x@example.test").exists()


@pytest.mark.parametrize(
    "email", ["alice\x00@example.test", "a" * 250 + "@example.test", "al\ud800ce@example.test"]
)
def test_an_address_the_user_table_cannot_hold_is_not_used(api, issuer, trust, email):
    trust(issuer, user="create")
    response = get(api, issuer.token(sub="s-1", email=email, email_verified=True))
    assert response.status_code == 200, response.content
    assert get_user_model().objects.get().email == ""
