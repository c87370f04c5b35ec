"""System checks for the authorization settings: tessera.E040–E044 and W040."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from tessera.checks import check_settings


@pytest.fixture(autouse=True)
def _debug(settings):
    # The test cache is per-process; with DEBUG on, W002 stays out of the way.
    settings.DEBUG = True


def ids(**tessera) -> list[str]:
    with override_settings(TESSERA=tessera):
        return [message.id for message in check_settings()]


def allowed_scopes(user):
    return {"read"}


def test_defaults_and_a_full_configuration_pass():
    assert ids() == []
    assert (
        ids(
            SCOPES={"posts:write": "Write posts."},
            USER_SCOPES=f"{__name__}.allowed_scopes",
            PAT_FRESH_LOGIN=timedelta(minutes=5),
            PAT_DEFAULT_TTL=timedelta(days=7),
            PAT_MAX_TTL=timedelta(days=7),
            PAT_LIMIT_PER_USER=1,
            ADMIN_ROLE="Ops",
        )
        == []
    )


@pytest.mark.parametrize(
    "scopes", [{"": "Empty."}, {"two words": "Spaces."}, {"x" * 65: "Long."}, {"ok": 3}, {3: "x"}]
)
def test_bad_scope_is_e040(scopes):
    assert ids(SCOPES=scopes) == ["tessera.E040"]


@pytest.mark.parametrize("hook", ["no.such.module.f", f"{__name__}.NOT_THERE", f"{__name__}.ids.x"])
def test_user_scopes_must_name_a_callable_e041(hook):
    assert ids(USER_SCOPES=hook) == ["tessera.E041"]


def test_user_scopes_naming_a_non_callable_is_e041():
    assert ids(USER_SCOPES=f"{__name__}.__doc__") == ["tessera.E041"]


@pytest.mark.parametrize(
    "settings_",
    [
        {"PAT_FRESH_LOGIN": timedelta(0)},
        {"PAT_DEFAULT_TTL": timedelta(seconds=-1)},
        {"PAT_MAX_TTL": timedelta(0)},
        {"PAT_DEFAULT_TTL": timedelta(days=31), "PAT_MAX_TTL": timedelta(days=30)},
    ],
)
def test_bad_token_durations_are_e042(settings_):
    assert "tessera.E042" in ids(**settings_)


def test_empty_admin_role_is_e043():
    assert ids(ADMIN_ROLE="") == ["tessera.E043"]


@pytest.mark.parametrize("limit", [0, -1])
def test_token_limit_below_one_is_e044(limit):
    assert ids(PAT_LIMIT_PER_USER=limit) == ["tessera.E044"]


def test_tokens_without_expiry_warn_w040():
    assert ids(PAT_MAX_TTL=None) == ["tessera.W040"]


def test_wrong_types_are_reported_once_as_e002():
    assert ids(SCOPES=["read"], PAT_MAX_TTL=365) == ["tessera.E002", "tessera.E002"]
