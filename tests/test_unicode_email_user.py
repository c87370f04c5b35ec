"""Look-alike addresses on a user model whose login field is the address itself.

Runs in the second pass, with ``--ds=tests.settings_email_user`` (see
tests/test_accounts_email_user.py): AUTH_USER_MODEL cannot change inside one process.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings

from tessera.models import EmailAddress

from .accounts_support import only_mail_to, snapshot
from .conftest import PASSWORD, requires_email_user_model

pytestmark = [
    requires_email_user_model,
    pytest.mark.django_db,
]
REGISTER = "/api/auth/register/"
KELVIN_KATE = "\u212aate@example.com"


def register(api, email: str):
    payload = {"email": email, "display_name": "Someone", "password": PASSWORD}
    return api.post(REGISTER, payload, format="json")


def log_in(api, email: str):
    return api.post("/api/auth/login/", {"email": email, "password": PASSWORD}, format="json")


@pytest.fixture
def kate():
    user = get_user_model().objects.create_user("kate@example.com", PASSWORD, display_name="K")
    EmailAddress.objects.create(user=user, email=user.email)
    return user


def test_the_custom_model_is_active():
    assert get_user_model().USERNAME_FIELD == get_user_model().EMAIL_FIELD == "email"


def test_a_kelvin_spelling_of_a_taken_login_address_is_taken(api, kate, hasher_calls):
    before = snapshot()
    hasher_calls.reset_mock()
    response = register(api, KELVIN_KATE)
    assert response.status_code == 201
    assert hasher_calls.call_count == 1
    assert snapshot() == before
    assert only_mail_to("kate@example.com").subject == "You already have an account"


@override_settings(TESSERA={"PREVENT_ENUMERATION": False})
def test_without_protection_it_is_a_unique_error_on_the_login_field(api, kate):
    before = snapshot()
    response = register(api, KELVIN_KATE)
    assert response.status_code == 400
    assert response.json()["fields"]["email"][0]["code"] == "unique"
    assert snapshot() == before
    assert mail.outbox == []


@override_settings(TESSERA={"PREVENT_ENUMERATION": False})
def test_a_kelvin_sign_up_is_stored_under_the_genuine_address(api):
    assert register(api, KELVIN_KATE).status_code == 201
    assert get_user_model().objects.get().email == "Kate@example.com"
    again = register(api, "kate@example.com")
    assert again.status_code == 400
    assert again.json()["fields"]["email"][0]["code"] == "unique"


@pytest.mark.parametrize("fields", [("username",), ("email",), ("username", "email")])
@pytest.mark.parametrize("spelling", ["kate@example.com", "KATE@example.com", KELVIN_KATE])
def test_every_login_field_setting_finds_the_address_in_any_spelling(
    api, kate, hasher_calls, fields, spelling
):
    hasher_calls.reset_mock()
    with override_settings(TESSERA={"LOGIN_FIELDS": fields}):
        response = log_in(api, spelling)
    assert response.status_code == 200, response.content
    assert hasher_calls.call_count == 1
