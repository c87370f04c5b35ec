"""What the passkey tests share: the relying party they run as, and registering a key."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from .webauthn_authenticator import ORIGIN, RP_ID, SoftAuthenticator

BASE = "/api/auth"
REGISTER_BEGIN = f"{BASE}/mfa/webauthn/register/begin/"
REGISTER_COMPLETE = f"{BASE}/mfa/webauthn/register/complete/"
PASSKEYS = f"{BASE}/mfa/webauthn/"
PASSKEY_LOGIN_BEGIN = f"{BASE}/passkey/login/begin/"
PASSKEY_LOGIN_COMPLETE = f"{BASE}/passkey/login/complete/"
REAUTHENTICATE_BEGIN = f"{BASE}/reauthenticate/webauthn/begin/"
# A second page of the same site, allowed too: a subdomain of the relying party id.
APP_ORIGIN = "https://app.example.com"


@pytest.fixture(name="passkeys_on")
def passkeys_on_fixture(settings):
    """Passkeys switched on for example.com, on top of the test settings."""
    settings.TESSERA = {
        **settings.TESSERA,
        "WEBAUTHN_RP_ID": RP_ID,
        "WEBAUTHN_ORIGINS": [ORIGIN, APP_ORIGIN],
    }


def passkey_url(passkey_id: str) -> str:
    return f"{PASSKEYS}{passkey_id}/"


def begin_registration(client: APIClient, headers: dict, *, passwordless: bool = False) -> dict:
    response = client.post(REGISTER_BEGIN, {"passwordless": passwordless}, format="json", **headers)
    assert response.status_code == 200, response.content
    return response.json()


def complete_registration(
    client: APIClient,
    headers: dict,
    credential: dict,
    *,
    name: str = "Laptop",
    passwordless: bool = False,
):
    body = {"credential": credential, "name": name, "passwordless": passwordless}
    return client.post(REGISTER_COMPLETE, body, format="json", **headers)


def register_passkey(
    client: APIClient,
    headers: dict,
    key: SoftAuthenticator | None = None,
    *,
    name: str = "Laptop",
    passwordless: bool = False,
) -> dict:
    """Register ``key`` (a new one by default) for the caller; the 201 body."""
    key = key or SoftAuthenticator()
    options = begin_registration(client, headers, passwordless=passwordless)
    response = complete_registration(
        client, headers, key.create(options), name=name, passwordless=passwordless
    )
    assert response.status_code == 201, response.content
    return response.json()


def error_code(response) -> str:
    return response.json()["code"]
