"""Settings are read lazily and validated by system checks."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tessera.backends import LockoutModelBackend
from tessera.checks import (
    check_accounts,
    check_atomic_requests,
    check_authentication_order,
    check_jwt,
    check_lockout_backend,
    check_settings,
)
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


@pytest.mark.parametrize("rates", [{"ip": "20/minute"}, {"ip": "many"}, {"email": "5/min"}])
def test_bad_throttle_rates_are_e006(rates):
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"username": "5/min", **rates}}):
        assert "tessera.E006" in ids(check_settings())


@override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"ip": None}})
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


# --- One table: checks ---------------------------------------------------------------


def test_every_default_satisfies_its_own_option():
    with override_settings(TESSERA={k: option.default for k, option in OPTIONS.items()}):
        assert [m for m in check_settings() if m.is_serious()] == []


BOUNDED = [(key, option) for key, option in OPTIONS.items() if option.positive or option.minimum]


@pytest.mark.parametrize("key,option", BOUNDED, ids=[key for key, _ in BOUNDED])
def test_every_bound_is_checked(key, option):
    if option.positive:
        value = timedelta(0) if timedelta in option.types else 0
    else:
        value = option.minimum - (timedelta(seconds=1) if timedelta in option.types else 1)
    shared = "tessera.E008" if timedelta in option.types else "tessera.E009"
    with override_settings(TESSERA={key: value}):
        # PAT_MAX_TTL at zero is also shorter than the default lifetime: the same id twice.
        assert {m.id for m in check_settings() if m.is_serious()} == {option.bounds_id or shared}


DOTTED = [key for key, option in OPTIONS.items() if option.dotted_path]


def test_the_dotted_path_settings_are_the_serializers_and_the_hooks():
    assert sorted(DOTTED) == [
        "EMAIL_DISPATCHER",
        "JWT_CLAIMS_HOOK",
        "ME_SERIALIZER",
        "REGISTER_SERIALIZER",
        "USER_SCOPES",
        "USER_SERIALIZER",
    ]


def claims_hook(user, session):
    return {}


NOT_A_CLASS = f"{__name__}.claims_hook"
NOT_CALLABLE = f"{__name__}.__doc__"


def dotted_path_id(key: str) -> str:
    return {"class": "tessera.E053", "callable": "tessera.E041"}[OPTIONS[key].dotted_path]


@pytest.mark.parametrize("key", DOTTED)
def test_every_dotted_path_is_imported_by_manage_py_check(key):
    # Today's defect: an unimportable JWT_CLAIMS_HOOK or USER_SERIALIZER passed `check`
    # and answered 500 at the first login.
    with override_settings(TESSERA={key: "nowhere.at_all"}):
        assert ids(check_settings()) == [dotted_path_id(key)]
        with pytest.raises(SystemCheckError, match=dotted_path_id(key)):
            call_command("check")


@pytest.mark.parametrize("key", DOTTED)
def test_every_dotted_path_must_name_what_it_is_called_as(key):
    wrong = NOT_A_CLASS if OPTIONS[key].dotted_path == "class" else NOT_CALLABLE
    with override_settings(TESSERA={key: wrong}):
        messages = check_settings()
    assert ids(messages) == [dotted_path_id(key)]
    assert f"not a {OPTIONS[key].dotted_path}" in messages[0].msg


def test_valid_dotted_paths_pass():
    serializer = "tessera.serializers.UserSerializer"
    with override_settings(TESSERA={"JWT_CLAIMS_HOOK": NOT_A_CLASS, "USER_SERIALIZER": serializer}):
        assert check_settings() == []


def test_a_module_failing_to_load_is_reported_not_raised(monkeypatch):
    broken = types.ModuleType("tessera_tests_broken")

    def fail(name):
        raise RuntimeError("settings of this module are missing")

    broken.__getattr__ = fail
    monkeypatch.setitem(sys.modules, "tessera_tests_broken", broken)
    with override_settings(TESSERA={"JWT_CLAIMS_HOOK": "tessera_tests_broken.hook"}):
        messages = check_settings()
    assert ids(messages) == ["tessera.E041"]
    assert "settings of this module are missing" in messages[0].msg


@pytest.mark.parametrize("fields", [("username",), ("email",), ["email", "username"]])
def test_login_fields_may_name_username_and_email(fields):
    with override_settings(TESSERA={"LOGIN_FIELDS": fields}):
        assert check_settings() == []


@pytest.mark.parametrize("fields", [(), [], ("phone",), ("username", "mail"), ("Email",)])
def test_login_fields_empty_or_unknown_is_e020(fields):
    with override_settings(TESSERA={"LOGIN_FIELDS": fields}):
        assert ids(check_settings()) == ["tessera.E020"]


# A float and a set fit no option: the float is truthy, the set unhashable, and no check
# may report either a second time or trip over it.
WRONG = [(key, value) for key in OPTIONS for value in (1.5, {1.5})]


# A shared cache, so that outside DEBUG the per-process cache warning stays out of the way.
SHARED_CACHE = {
    "default": {"BACKEND": "tessera.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize("key,value", WRONG, ids=[f"{k}-{type(v).__name__}" for k, v in WRONG])
def test_a_wrong_type_is_one_e002_from_all_of_tesseras_checks(key, value, debug):
    with override_settings(TESSERA={key: value}, DEBUG=debug, CACHES=SHARED_CACHE):
        tessera_messages = [m.id for m in run_checks() if m.id.startswith("tessera.")]
    assert tessera_messages == ["tessera.E002"]


def test_tesseras_checks_are_registered_by_the_app():
    registered = registry.get_checks()
    assert {check_settings, check_jwt, check_accounts, check_authentication_order} <= set(
        registered
    )
    assert check_atomic_requests in registered


@pytest.mark.parametrize(
    "tessera,check_id",
    [
        ({"TOKEN_TTL": timedelta(seconds=-1)}, "tessera.E008"),
        ({"JWT_ACCESS_LIFETIME": timedelta(0)}, "tessera.E008"),
        ({"JWT_LEEWAY": timedelta(seconds=-5)}, "tessera.E008"),
        ({"JWT_LEEWAY": timedelta(days=365)}, "tessera.W011"),
        ({"JWT_REUSE_GRACE": timedelta(days=30)}, "tessera.W011"),
        ({"NUM_PROXIES": -1}, "tessera.E009"),
        ({"TOKEN_LIMIT_PER_USER": 0}, "tessera.E009"),
        ({"MAX_BODY_BYTES": 10}, "tessera.E009"),
    ],
)
def test_out_of_bounds_values_are_reported(tessera, check_id, settings):
    settings.DEBUG = True
    with override_settings(TESSERA=tessera):
        assert [m.id for m in check_settings()] == [check_id]


# --- Failure lockout ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rates",
    [{"accounts": "5/15min"}, {"account": "5/fortnight"}, {"device": "0/min"}, {"ip": 5}],
)
def test_bad_lockout_rates_are_e110(rates):
    with override_settings(TESSERA={"LOCKOUT_RATES": rates}):
        assert "tessera.E110" in ids(check_settings())


@pytest.mark.parametrize("rate", ["5/15min", "1/sec", "100/2day", None])
def test_lockout_rates_may_have_multiples_or_be_off(rate, settings):
    settings.DEBUG = True
    with override_settings(TESSERA={"LOCKOUT_RATES": {"device": rate}}):
        assert check_settings() == []


@pytest.mark.parametrize(
    "backoff", [(timedelta(0),), [timedelta(minutes=1), 60], (timedelta(seconds=-5),)]
)
def test_a_bad_backoff_is_e111(backoff):
    with override_settings(TESSERA={"LOCKOUT_BACKOFF": backoff}):
        assert "tessera.E111" in ids(check_settings())


def test_no_backoff_is_allowed(settings):
    settings.DEBUG = True
    with override_settings(TESSERA={"LOCKOUT_BACKOFF": ()}):
        assert check_settings() == []


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}, DEBUG=True
)
def test_a_cache_without_atomic_scripts_is_e112():
    assert "tessera.E112" in ids(check_settings())
    with override_settings(TESSERA={"THROTTLE_BACKEND": "database"}):
        assert "tessera.E112" not in ids(check_settings())


def test_the_retired_username_throttle_is_w110(settings):
    settings.DEBUG = True
    with override_settings(TESSERA={"LOGIN_THROTTLE_RATES": {"username": "5/min"}}):
        assert ids(check_settings()) == ["tessera.W110"]


def test_the_per_account_lockout_off_is_w111(settings):
    settings.DEBUG = True
    with override_settings(TESSERA={"LOCKOUT_RATES": {"account": None, "account_ip": None}}):
        assert ids(check_settings()) == ["tessera.W111"]
    with override_settings(TESSERA={"LOCKOUT_RATES": {"account": None}}):
        assert check_settings() == []


class ProjectLockoutBackend(LockoutModelBackend):
    """A project's own backend built on Tessera's."""


def test_django_logins_outside_the_lockout_are_w112():
    with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]):
        assert ids(check_lockout_backend()) == ["tessera.W112"]
    assert check_lockout_backend() == []
    with override_settings(AUTHENTICATION_BACKENDS=[f"{__name__}.ProjectLockoutBackend"]):
        assert check_lockout_backend() == []
    assert check_lockout_backend in registry.get_checks()
