"""Second factors in tests: an authenticator app set up for a user, its codes, tickets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pyotp
from django.utils import timezone
from rest_framework.test import APIClient

from tessera.services.mfa import factors, totp

from .conftest import PASSWORD

MFA_AUTHENTICATE_URL = "/api/auth/mfa/authenticate/"
REAUTHENTICATE_URL = "/api/auth/reauthenticate/"
TOTP_URL = "/api/auth/mfa/totp/"
TOTP_CONFIRM_URL = "/api/auth/mfa/totp/confirm/"
RECOVERY_CODES_URL = "/api/auth/mfa/recovery-codes/"
FACTORS_URL = "/api/auth/mfa/"
STEP = timedelta(seconds=30)


def app_code(secret: str, steps: int = 0) -> str:
    """What the authenticator app shows now (Django's clock), or ``steps`` steps away."""
    return pyotp.TOTP(secret).at(timezone.now() + steps * STEP)


@dataclass
class Factors:
    user: object
    secret: str
    recovery_codes: list[str]

    def next_code(self) -> str:
        """A code the server has not seen: the set-up used the current step's, so this is
        the next step's, inside the drift allowed."""
        return app_code(self.secret, 1)


def enable_totp(user) -> Factors:
    """An authenticator app set up and confirmed for ``user`` (as through mfa/totp/)."""
    enrolment = totp.begin(None, user)
    confirmed = totp.confirm(enrolment.authenticator, app_code(enrolment.secret), "code")
    return Factors(user, enrolment.secret, factors.factor_added(None, confirmed))


def mfa_ticket(
    client: APIClient, path: str = "/api/auth/login/", headers: dict | None = None, **fields
) -> str:
    """Log alice in through ``path`` (with ``fields`` in the body, ``headers`` as WSGI
    environ keys): it must stop at mfa_required; the ticket."""
    body = {"username": "alice", "password": PASSWORD, **fields}
    response = client.post(path, body, format="json", **(headers or {}))
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "mfa_required"
    return response.json()["ticket"]


def second_factor(client: APIClient, ticket: str, **proof):
    return client.post(MFA_AUTHENTICATE_URL, {"ticket": ticket, **proof}, format="json")
