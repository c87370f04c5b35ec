"""A WebAuthn challenge serves one ceremony, even when twenty copies of its response race.

Checked on database state against real PostgreSQL: the key is one that keeps no counter
(it reports 0 every time), so the challenge's single use is all that stands between the
copies and twenty sessions.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory

from tessera.errors import WebAuthnChallengeInvalid
from tessera.models import Authenticator, Session, WebAuthnChallenge
from tessera.services import login as login_service
from tessera.services.mfa import passwordless, webauthn

from .concurrency import run_together
from .conftest import requires_postgres
from .webauthn_authenticator import ORIGIN, RP_ID, SoftAuthenticator

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
REPEAT = 3
COPIES = 20


@pytest.fixture(autouse=True)
def passkeys_without_throttles(settings):
    # No throttle: twenty attempts from one address inside a second are the point here.
    settings.TESSERA = {
        "WEBAUTHN_RP_ID": RP_ID,
        "WEBAUTHN_ORIGINS": [ORIGIN],
        "LOGIN_THROTTLE_RATES": {"ip": None, "username": None},
    }


def request():
    return APIRequestFactory().post("/api/auth/passkey/login/complete/")


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_twenty_copies_of_a_registration_store_one_key(user, attempt):
    key = SoftAuthenticator(counter_step=0)
    credential = key.create(webauthn.registration_options(user, passwordless=True))

    def complete(index: int):
        return webauthn.register(
            request(), user, credential, name=f"copy {index}", passwordless=True
        )

    results = run_together(COPIES, complete)
    assert sum(isinstance(r, webauthn.Registered) for r in results) == 1
    assert sum(isinstance(r, WebAuthnChallengeInvalid) for r in results) == COPIES - 1
    assert Authenticator.objects.filter(type="webauthn").count() == 1
    assert WebAuthnChallenge.objects.get().used_at is not None


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_twenty_copies_of_a_passwordless_assertion_open_one_session(user, attempt):
    key = SoftAuthenticator(counter_step=0)
    webauthn.register(
        request(),
        user,
        key.create(webauthn.registration_options(user, passwordless=True)),
        name="Laptop",
        passwordless=True,
    )
    credential = key.get(webauthn.passwordless_options())
    intent = login_service.LoginIntent(login_service.TOKEN)

    results = run_together(COPIES, lambda i: passwordless.log_in(request(), credential, intent))
    assert sum(isinstance(r, WebAuthnChallengeInvalid) for r in results) == COPIES - 1
    (session,) = Session.objects.filter(user=user)
    assert session.amr == ["hwk", "user", "mfa"]
