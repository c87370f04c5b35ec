"""Settings out of their bounds are start-up errors or warnings, not surprises at runtime."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from tessera.checks import check_settings

pytestmark = pytest.mark.django_db


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
