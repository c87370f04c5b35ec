"""System checks for the account settings (tessera.E050–E054, W050–W055)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from tessera.checks import check_accounts, check_settings

HTTPS_URLS = {
    "password_reset": "https://app.example.com/reset/{uid}/{token}",
    "verify_email": "https://app.example.com/verify/{key}",
    "login": "https://app.example.com/login",
    "not_me": "https://app.example.com/not-me/{token}",
}


def ids(tessera: dict, debug: bool = True) -> list[str]:
    with override_settings(TESSERA=tessera, DEBUG=debug):
        return [m.id for m in check_accounts()]


def test_defaults_pass_in_debug():
    assert ids({}) == []


def test_https_urls_pass_in_production():
    assert ids({"FRONTEND_URLS": HTTPS_URLS}, debug=False) == []


@pytest.mark.parametrize(
    "urls",
    [
        {"password_reset": "https://app.example.com/reset/{uid}"},  # token missing
        {"password_reset": "https://app.example.com/reset/{uid}/{token}/{extra}"},
        {"verify_email": "https://app.example.com/verify/{key.__class__}"},
        {"verify_email": "https://app.example.com/verify/{key"},  # bad syntax
        {"verify_email": "/verify/{key}"},  # relative
        {"verify_email": "javascript:alert(1)//{key}"},
        {"login": 42},
        {"signup": "https://app.example.com/signup"},  # unknown link
    ],
)
def test_bad_frontend_urls(urls):
    assert ids({"FRONTEND_URLS": urls}) == ["tessera.E050"]


def test_plain_http_links_warn_outside_debug():
    assert ids(
        {"FRONTEND_URLS": {**HTTPS_URLS, "login": "http://app.example.com/login"}}, debug=False
    ) == ["tessera.W050"]


def test_new_device_emails_without_their_own_link_warn_outside_debug():
    without_not_me = {k: v for k, v in HTTPS_URLS.items() if k != "not_me"}
    assert ids({"FRONTEND_URLS": without_not_me}, debug=False) == ["tessera.W055"]
    assert ids({"FRONTEND_URLS": without_not_me}, debug=True) == []
    off = {"FRONTEND_URLS": without_not_me, "NEW_DEVICE_NOTICE": False}
    assert ids(off, debug=False) == []


def test_a_not_me_link_needs_its_token_placeholder():
    assert ids({"FRONTEND_URLS": {"not_me": "https://app.example.com/not-me"}}) == ["tessera.E050"]


@pytest.mark.parametrize(
    "rates,expected",
    [
        ({"register_ip": "5/min"}, []),
        ({"register": "5/min"}, ["tessera.E051"]),
        ({"resend_email": "5 per minute"}, ["tessera.E051"]),
        ({"resend_email": None}, ["tessera.W051"]),
    ],
)
def test_account_throttle_rates(rates, expected):
    assert ids({"ACCOUNT_THROTTLE_RATES": rates}) == expected


@pytest.mark.parametrize(
    "tessera,expected",
    [
        ({"REGISTER_AUTO_LOGIN": True}, ["tessera.E052"]),
        ({"REGISTER_AUTO_LOGIN": True, "PREVENT_ENUMERATION": False}, ["tessera.W054"]),
        (
            {
                "REGISTER_AUTO_LOGIN": True,
                "PREVENT_ENUMERATION": False,
                "EMAIL_VERIFICATION": "mandatory",
            },
            ["tessera.E052", "tessera.W054"],
        ),
        ({"PASSWORD_RESET_TOKEN_TTL": timedelta(days=30)}, ["tessera.W053"]),
    ],
)
def test_account_settings(tessera, expected):
    assert sorted(ids(tessera)) == expected


# Moved from test_account_settings: a serializer path and a lifetime's bound are judged by
# their options, in check_settings with every other setting, under the same ids.
@pytest.mark.parametrize(
    "tessera,expected",
    [
        ({"REGISTER_SERIALIZER": "nowhere.Serializer"}, ["tessera.E053"]),
        ({"ME_SERIALIZER": "tessera.serializers.accounts.Missing"}, ["tessera.E053"]),
        ({"PASSWORD_RESET_TOKEN_TTL": timedelta(0)}, ["tessera.E054"]),
        ({"EMAIL_VERIFICATION_KEY_TTL": timedelta(seconds=-1)}, ["tessera.E054"]),
    ],
)
def test_account_option_values(tessera, expected):
    with override_settings(TESSERA=tessera, DEBUG=True):
        assert sorted(m.id for m in check_settings()) == expected
    assert ids(tessera) == []  # reported once, not again by check_accounts


def test_basic_over_http_warns_outside_debug():
    assert ids({"BASIC_AUTH_ALLOW_HTTP": True, "FRONTEND_URLS": HTTPS_URLS}, debug=False) == [
        "tessera.W052"
    ]
    assert ids({"BASIC_AUTH_ALLOW_HTTP": True}) == []


@pytest.mark.parametrize(
    "tessera",
    [
        {"EMAIL_VERIFICATION": "sometimes"},
        {"ACCOUNT_DELETION": "archive"},
        {"PREVENT_ENUMERATION": "yes"},
        {"FRONTEND_URLS": "https://app.example.com"},
    ],
)
def test_types_and_choices_use_the_generic_checks(tessera):
    with override_settings(TESSERA=tessera, DEBUG=True):
        assert {m.id for m in check_settings()} & {"tessera.E002", "tessera.E005"}
