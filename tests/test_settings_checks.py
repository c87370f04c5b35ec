"""Settings are read lazily and validated by system checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tessera.checks import check_settings
from tessera.conf import OPTIONS, tessera_settings


@pytest.fixture(autouse=True)
def _debug(settings):
    # The test cache is per-process; with DEBUG on, W002 stays out of the way.
    settings.DEBUG = True


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_defaults_are_returned_when_nothing_is_set():
    assert tessera_settings.TOKEN_TTL == timedelta(hours=10)
    assert tessera_settings.AUTH_HEADER_TYPES == ("Token", "Bearer")


def test_override_settings_takes_effect_and_reverts():
    with override_settings(TESSERA={"TOKEN_TTL": timedelta(minutes=3)}):
        assert tessera_settings.TOKEN_TTL == timedelta(minutes=3)
    assert tessera_settings.TOKEN_TTL == timedelta(hours=10)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError):
        tessera_settings.NOT_A_SETTING  # noqa: B018


def test_valid_configuration_has_no_messages():
    assert check_settings() == []


@override_settings(TESSERA={"TOKEN_TLL": timedelta(hours=1)})
def test_unknown_key_is_e001():
    assert ids(check_settings()) == ["tessera.E001"]


@pytest.mark.parametrize(
    "key,value",
    [
        ("TOKEN_TTL", 3600),
        ("AUTO_REFRESH", "yes"),
        ("TOKEN_LIMIT_PER_USER", True),
        ("TOKEN_LIMIT_PER_USER", "3"),
        ("AUTH_HEADER_TYPES", "Token"),
        ("MAX_TTL", "30d"),
    ],
)
def test_wrong_type_is_e002(key, value):
    with override_settings(TESSERA={key: value}):
        assert ids(check_settings()) == ["tessera.E002"]


def test_none_is_accepted_where_documented():
    nullable = {k: None for k, option in OPTIONS.items() if option.nullable}
    with override_settings(TESSERA=nullable):
        # Some None values are legal but unwise, and warn; none is a type error.
        assert [m.id for m in check_settings() if m.is_serious()] == []


@override_settings(SECRET_KEY="short-secret-key")
def test_short_secret_key_is_e003():
    messages = check_settings()
    assert ids(messages) == ["tessera.E003"]
    assert "SECRET_KEY is 16 bytes" in messages[0].msg


@override_settings(TESSERA={"SIGNING_KEY": "x" * 31})
def test_short_signing_key_is_e003():
    assert ids(check_settings()) == ["tessera.E003"]


@override_settings(SECRET_KEY="short", TESSERA={"SIGNING_KEY": "k" * 32})
def test_long_signing_key_overrides_short_secret_key():
    assert check_settings() == []


@override_settings(TESSERA=["not", "a", "dict"])
def test_non_dict_is_e004():
    assert ids(check_settings()) == ["tessera.E004"]


@override_settings(TESSERA={"TOKEN_LIMIT_POLICY": "revoke_oldest"})
def test_bad_choice_is_e005():
    assert ids(check_settings()) == ["tessera.E005"]


@pytest.mark.parametrize(
    "rates", [{"ip": "20/minute"}, {"ip": "many"}, {"email": "5/min"}]
)
def test_bad_throttle_rates_are_e006(rates):
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"username": "5/min", **rates}}):
        assert "tessera.E006" in ids(check_settings())


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None, "username": None}})
def test_disabled_login_throttle_is_w001():
    assert ids(check_settings()) == ["tessera.W001"]


@override_settings(TESSERA={"CACHE_ALIAS": "sessions"})
def test_missing_cache_alias_is_e007():
    assert ids(check_settings()) == ["tessera.E007"]


@override_settings(
    DEBUG=False, CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)
def test_per_process_cache_in_production_is_w002():
    assert ids(check_settings()) == ["tessera.W002"]


@override_settings(TESSERA={"TOKEN_TLL": 1})
def test_errors_stop_management_commands():
    with pytest.raises(SystemCheckError, match="tessera.E001"):
        call_command("check")


# --- One table: lookups --------------------------------------------------------------


@pytest.mark.parametrize(
    "key,given",
    [
        ("LOGIN_THROTTLE_RATES", {"ip": "100/min"}),
        ("ACCOUNT_THROTTLE_RATES", {"resend_email": None}),
        ("FRONTEND_URLS", {"login": "https://app.example.com/login"}),
    ],
)
def test_dict_settings_with_a_merge_rule_keep_the_defaults_of_keys_left_out(key, given):
    assert OPTIONS[key].merge_per_key
    with override_settings(TESSERA={key: given}):
        assert getattr(tessera_settings, key) == {**OPTIONS[key].default, **given}
    assert getattr(tessera_settings, key) == OPTIONS[key].default


def test_dict_settings_without_a_merge_rule_replace_the_default():
    with override_settings(TESSERA={"SCOPES": {"posts:read": "Read posts."}}):
        assert tessera_settings.SCOPES == {"posts:read": "Read posts."}


def test_a_wrongly_typed_dict_setting_is_passed_through_for_the_checks_to_report():
    with override_settings(TESSERA={"FRONTEND_URLS": "https://app.example.com"}):
        assert tessera_settings.FRONTEND_URLS == "https://app.example.com"
        assert ids(check_settings()) == ["tessera.E002"]

