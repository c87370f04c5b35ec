"""The relying party id and the allowed origins are judged at start-up (tessera.E070-E073)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tessera.checks import check_webauthn


def ids(settings_dict: dict) -> list[str]:
    with override_settings(TESSERA=settings_dict):
        return [message.id for message in check_webauthn()]


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": ["https://example.com"]},
        {
            "WEBAUTHN_RP_ID": "example.com",
            "WEBAUTHN_ORIGINS": ("https://example.com", "https://app.example.com:8443"),
        },
        {"WEBAUTHN_RP_ID": "localhost", "WEBAUTHN_ORIGINS": ["http://localhost:8000"]},
        {"WEBAUTHN_RP_ID": "localhost", "WEBAUTHN_ORIGINS": ["http://app.localhost"]},
        {
            "WEBAUTHN_RP_ID": "xn--bcher-kva.example",
            "WEBAUTHN_ORIGINS": ["https://xn--bcher-kva.example"],
        },
        {
            "WEBAUTHN_RP_ID": "example.com",
            "WEBAUTHN_ORIGINS": [
                "https://example.com",
                "android:apk-key-hash:" + "A" * 42 + "w",
            ],
        },
    ],
    ids=[
        "off",
        "one origin",
        "subdomain and port",
        "localhost",
        "localhost subdomain",
        "idna",
        "android app",
    ],
)
def test_a_consistent_relying_party_passes(given):
    assert ids(given) == []


@pytest.mark.parametrize(
    "rp_id",
    ["https://example.com", "example.com:443", "example.com/", "Example.com", "127.0.0.1", ""],
)
def test_a_relying_party_id_that_is_no_domain_is_e070(rp_id):
    assert ids({"WEBAUTHN_RP_ID": rp_id, "WEBAUTHN_ORIGINS": ["https://example.com"]}) == [
        "tessera.E070"
    ]


def test_a_relying_party_without_origins_is_e071():
    assert ids({"WEBAUTHN_RP_ID": "example.com"}) == ["tessera.E071"]
    assert ids({"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": []}) == ["tessera.E071"]


def test_origins_without_a_relying_party_are_e071():
    assert ids({"WEBAUTHN_ORIGINS": ["https://example.com"]}) == ["tessera.E071"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://example.com",  # plain http is for localhost only
        "https://example.com/",
        "https://example.com/login",
        "https://example.com?next=/",
        "https://Example.com",
        "https://user@example.com",
        "https://example.com:99999",
        "https://example.com:443",  # browsers drop the default port
        "https://*.example.com",  # and match no wildcards
        "example.com",
        "",
        42,
        "android:apk-key-hash:short",
        "ios:bundle-id:com.example.app",
    ],
)
def test_an_entry_that_is_no_origin_is_e072(origin):
    assert ids({"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": [origin]}) == ["tessera.E072"]


@pytest.mark.parametrize(
    "origin", ["https://example.org", "https://notexample.com", "https://com", "https://evil.com"]
)
def test_an_origin_outside_the_relying_party_is_e073(origin):
    assert ids({"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": [origin]}) == ["tessera.E073"]


def test_each_bad_origin_is_named():
    given = {
        "WEBAUTHN_RP_ID": "example.com",
        "WEBAUTHN_ORIGINS": ["https://example.com", "https://evil.com", "http://example.com"],
    }
    assert ids(given) == ["tessera.E073", "tessera.E072"]


def test_wrong_types_are_left_to_e002():
    assert ids({"WEBAUTHN_RP_ID": 1.5, "WEBAUTHN_ORIGINS": {"https://example.com"}}) == []


@override_settings(TESSERA={"WEBAUTHN_RP_ID": "example.com"})
def test_the_check_stops_management_commands():
    with pytest.raises(SystemCheckError, match="tessera.E071"):
        call_command("check")
