"""TRUSTED_ISSUERS entries and the class's place are judged at start-up (tessera.E080-E085)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tessera.checks import check_trusted_issuers

GOOD = {
    "issuer": "https://tenant.example.test/",
    "audience": "https://api.example.test",
    "algorithms": ["RS256"],
    "user": "link",
}


def ids(*entries, authentication_classes=None) -> list[str]:
    overrides = {"TESSERA": {"TRUSTED_ISSUERS": list(entries)}}
    if authentication_classes is not None:
        overrides["REST_FRAMEWORK"] = {"DEFAULT_AUTHENTICATION_CLASSES": authentication_classes}
    with override_settings(**overrides):
        return [message.id for message in check_trusted_issuers()]


@pytest.mark.parametrize(
    "entry",
    [
        GOOD,
        {**GOOD, "user": "create", "link_verified_email": True, "email_claim": "mail"},
        {**GOOD, "user": "tests.test_external_jwt.map_by_username"},
        {**GOOD, "algorithms": ["ES256", "PS256", "EdDSA"], "audience": ["a", "b"]},
        {**GOOD, "jwks_uri": "https://tenant.example.test/keys", "roles_claim": ["a", "b"]},
        {**GOOD, "issuer": "http://127.0.0.1:8080", "scopes_claim": "scp"},
        {
            **GOOD,
            "audience_claim": "client_id",
            "required_claims": {"token_use": "access"},
        },
        {**GOOD, "required_claims": {"n": 1, "f": 0.5, "b": True, "x": None, "l": ["a"]}},
        {**GOOD, "required_claims": {"nested": {"a": [1, {"b": "c"}]}}},
        {**GOOD, "open_session": True},
        {**GOOD, "open_session": False},
    ],
)
def test_good_entries_pass(entry):
    assert ids(entry) == []


@pytest.mark.parametrize(
    ("entry", "check_id"),
    [
        ("https://tenant.example.test/", "tessera.E080"),
        ({k: v for k, v in GOOD.items() if k != "audience"}, "tessera.E080"),
        ({**GOOD, "audiences": "x"}, "tessera.E080"),
        ({**GOOD, "issuer": "http://tenant.example.test/"}, "tessera.E080"),
        ({**GOOD, "audience": ""}, "tessera.E080"),
        ({**GOOD, "algorithms": ["HS256"]}, "tessera.E081"),
        ({**GOOD, "algorithms": ["none"]}, "tessera.E081"),
        ({**GOOD, "algorithms": []}, "tessera.E081"),
        ({**GOOD, "algorithms": "RS256"}, "tessera.E081"),
        ({**GOOD, "user": "make"}, "tessera.E082"),
        ({**GOOD, "user": "no.such.function"}, "tessera.E082"),
        ({**GOOD, "jwks_uri": "http://tenant.example.test/keys"}, "tessera.E083"),
        ({**GOOD, "roles_claim": []}, "tessera.E084"),
        ({**GOOD, "link_verified_email": "yes"}, "tessera.E084"),
        ({**GOOD, "required_claims": ["token_use"]}, "tessera.E084"),
        # Compared type-exactly with JSON claims: a tuple would never match, nor NaN.
        ({**GOOD, "required_claims": {"groups": ("a", "b")}}, "tessera.E084"),
        ({**GOOD, "required_claims": {"level": float("nan")}}, "tessera.E084"),
        ({**GOOD, "required_claims": {"level": float("inf")}}, "tessera.E084"),
        ({**GOOD, "required_claims": {"nested": {1: "a"}}}, "tessera.E084"),
        ({**GOOD, "open_session": "yes"}, "tessera.E084"),
        ({**GOOD, "open_session": 1}, "tessera.E084"),
    ],
)
def test_bad_entries_are_errors(entry, check_id):
    assert ids(entry) == [check_id]


def test_a_repeated_issuer_is_an_error():
    assert ids(GOOD, GOOD) == ["tessera.E080"]


def test_tesseras_own_issuer_is_an_error():
    with override_settings(TESSERA={"TRUSTED_ISSUERS": [GOOD], "JWT_ISSUER": GOOD["issuer"]}):
        assert [message.id for message in check_trusted_issuers()] == ["tessera.E080"]


def test_jwt_authentication_listed_first_is_an_error():
    own = "tessera.authentication.JWTAuthentication"
    external = "tessera.authentication.ExternalJWTAuthentication"
    assert ids(GOOD, authentication_classes=[own, external]) == ["tessera.E085"]
    assert ids(GOOD, authentication_classes=[external, own]) == []
