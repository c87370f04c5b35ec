"""Social sign-in's one-time values under concurrency, checked on database state
(PostgreSQL)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tessera.models import ExternalIdentity, Session, SocialLogin

from .concurrency import run_together
from .conftest import requires_postgres
from .fake_issuer import query_of
from .social_support import (
    EXCHANGE_URL,
    binding_cookie,
    callback,
    exchange,
    sign_in_code,
    start,
)

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
REPEAT = 3
WIDE_OPEN = {"LOGIN_THROTTLE_RATES": {"ip": None, "username": None}}


@pytest.fixture
def open_rates(settings):
    settings.TESSERA = {**settings.TESSERA, **WIDE_OPEN}


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_concurrent_exchanges_of_one_code_open_one_session(attempt, issuer, social, open_rates):
    social(issuer)
    starter = APIClient()
    code = sign_in_code(starter, issuer)

    def spend(index: int) -> int:
        client = APIClient()  # the same browser: its cookies
        for name, cookie in starter.cookies.items():
            client.cookies[name] = cookie.value
        return client.post(EXCHANGE_URL, {"code": code}, format="json").status_code

    statuses = run_together(10, spend)
    assert sorted(statuses) == [200] + [400] * 9
    assert Session.objects.count() == 1
    assert SocialLogin.objects.get().code_used_at is not None


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_concurrent_callbacks_of_one_state_hand_out_one_code(attempt, issuer, social, open_rates):
    social(issuer)
    starter = APIClient()
    params = start(starter)
    binding = starter.cookies[binding_cookie(params)].value
    codes = [issuer.approve(params) for _ in range(10)]

    def back(index: int):
        client = APIClient()
        client.cookies[binding_cookie(params)] = binding
        return callback(client, code=codes[index], state=params["state"])["Location"]

    locations = run_together(10, back)
    signed_in = [loc for loc in locations if "code=" in loc]
    assert len(signed_in) == 1, locations
    assert ExternalIdentity.objects.count() == 1
    response = exchange(starter, query_of(signed_in[0])["code"])
    assert response.status_code == 200
