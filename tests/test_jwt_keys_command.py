from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tessera.checks import check_jwt

from .conftest import get_protected


def generate(**options) -> dict:
    out = StringIO()
    call_command("tessera_generate_jwt_key", stdout=out, **options)
    return json.loads(out.getvalue())


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256", "HS256", "HS512"])
def test_generated_keys_pass_the_checks_and_work(api, jwt_login, algorithm):
    key = generate(algorithm=algorithm, kid="k1")
    assert key["kid"] == "k1" and key["algorithm"] == algorithm
    with override_settings(TESSERA={"JWT_KEYS": [key]}):
        assert check_jwt() == []
        access = jwt_login()["access"]
        assert get_protected(api, access, "Bearer").status_code == 200


def test_bad_kid_is_refused():
    with pytest.raises(CommandError):
        generate(kid="x" * 65)


def ids(**tessera) -> list[str]:
    with override_settings(TESSERA=tessera):
        return [m.id for m in check_jwt()]


def test_weak_hmac_secret_is_e011():
    assert ids(JWT_KEYS=[{"kid": "a", "algorithm": "HS256", "secret": "s" * 31}]) == [
        "tessera.E011"
    ]
    assert ids(JWT_KEYS=[{"kid": "a", "algorithm": "HS512", "secret": "s" * 48}]) == [
        "tessera.E011"
    ]


def test_short_rsa_key_is_e012():
    from .jwt_keys import rsa_pair

    private, _ = rsa_pair(1024)
    assert ids(JWT_KEYS=[{"kid": "a", "algorithm": "RS256", "private_key": private}]) == [
        "tessera.E012"
    ]


def test_unusable_ring_is_e010():
    assert ids(JWT_KEYS=[{"kid": "a", "algorithm": "none", "secret": "s" * 64}]) == ["tessera.E010"]
    assert ids(JWT_KEYS=[{"algorithm": "HS256", "secret": "s" * 64}]) == ["tessera.E010"]


def test_key_of_the_wrong_type_for_its_algorithm_is_e010():
    from .jwt_keys import ec_pair

    private, _ = ec_pair()
    assert ids(JWT_KEYS=[{"kid": "a", "algorithm": "RS256", "private_key": private}]) == [
        "tessera.E010"
    ]


def test_unknown_active_kid_is_e013():
    keys = [{"kid": "a", "algorithm": "HS256", "secret": "s" * 64}]
    assert ids(JWT_KEYS=keys, JWT_ACTIVE_KID="b") == ["tessera.E013"]


def test_duplicate_kids_are_e014():
    key = {"kid": "a", "algorithm": "HS256", "secret": "s" * 64}
    assert ids(JWT_KEYS=[key, key]) == ["tessera.E014"]


def test_cookie_checks():
    assert ids(JWT_COOKIES=True, JWT_COOKIE_SECURE=False, JWT_COOKIE_SAMESITE="None") == [
        "tessera.E015"
    ]
    with override_settings(DEBUG=False):
        assert ids(JWT_COOKIES=True, JWT_COOKIE_SECURE=False) == ["tessera.W010"]
