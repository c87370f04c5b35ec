"""The account flows on a custom user model whose login field is the e-mail address.

AUTH_USER_MODEL cannot change inside one process: these tests run in their own pytest
invocation with ``--ds=tests.settings_email_user`` (``make test`` does it).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings

from tessera.models import Session

from .accounts_support import NEW_PASSWORD, only_mail_to, reset_parts, snapshot, verify_key
from .conftest import PASSWORD, auth_header, requires_email_user_model

pytestmark = [
    requires_email_user_model,
    pytest.mark.django_db,
]
REGISTER = "/api/auth/register/"


def register(api, **body):
    payload = {"email": "abc@example.com", "display_name": "Abc", "password": PASSWORD, **body}
    return api.post(REGISTER, payload, format="json")


def log_in(api, email="abc@example.com", password=PASSWORD, **fields):
    body = {"email": email, "password": password, **fields}
    return api.post("/api/auth/login/", body, format="json")


def test_the_custom_model_is_active():
    assert get_user_model()._meta.label == "email_user.EmailUser"
    assert get_user_model().USERNAME_FIELD == "email"


def test_register_verify_login_me(api):
    response = register(api, is_staff=True, is_superuser=True)
    assert response.status_code == 201
    user = get_user_model().objects.get(email="abc@example.com")
    assert (user.display_name, user.is_staff, user.is_superuser) == ("Abc", False, False)
    key = verify_key(only_mail_to("abc@example.com"))
    assert api.post("/api/auth/email/verify/", {"key": key}, format="json").status_code == 204
    token = log_in(api).json()["token"]
    me = api.get("/api/auth/me/", **auth_header(token)).json()
    assert set(me) == {"id", "email", "date_joined", "email_verified", "roles"}
    assert me["email_verified"] is True


def test_display_name_is_required(api):
    payload = {"email": "abc@example.com", "password": PASSWORD}
    response = api.post(REGISTER, payload, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["display_name"][0]["code"] == "required"
    assert not get_user_model().objects.exists()


def test_taken_address_answers_like_a_new_one(api, hasher_calls):
    get_user_model().objects.create_user("abc@example.com", PASSWORD, display_name="Owner")
    before = snapshot()
    hasher_calls.reset_mock()
    taken = register(api, email="ABC@example.com")
    assert hasher_calls.call_count == 1
    fresh = register(api, email="new@example.com")
    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())
    assert only_mail_to("abc@example.com").subject == "You already have an account"
    assert snapshot()["users"][0] == before["users"][0]


@override_settings(
    TESSERA={
        "PREVENT_ENUMERATION": False,
        "REGISTER_AUTO_LOGIN": True,
        "EMAIL_VERIFICATION": "none",
    }
)
def test_auto_login_and_unique_error_on_the_login_field(api):
    response = register(api)
    assert response.status_code == 201
    assert response.json()["user"]["email"] == "abc@example.com"
    assert api.get("/api/auth/me/", **auth_header(response.json()["token"])).status_code == 200
    again = register(api)
    assert again.status_code == 400
    assert again.json()["fields"]["email"][0]["code"] == "unique"


def test_password_reset_and_change(api):
    user = get_user_model().objects.create_user("abc@example.com", PASSWORD, display_name="A")
    assert (
        api.post(
            "/api/auth/password/reset/", {"email": "abc@example.com"}, format="json"
        ).status_code
        == 202
    )
    uid, token = reset_parts(only_mail_to("abc@example.com"))
    assert (
        api.post(
            "/api/auth/password/reset/confirm/",
            {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
            format="json",
        ).status_code
        == 204
    )
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    token = log_in(api, password=NEW_PASSWORD).json()["token"]
    response = api.post(
        "/api/auth/password/change/",
        {"current_password": NEW_PASSWORD, "new_password": PASSWORD},
        format="json",
        **auth_header(token),
    )
    assert response.status_code == 204


def test_changing_the_login_address(api):
    get_user_model().objects.create_user("abc@example.com", PASSWORD, display_name="A")
    first = log_in(api).json()
    response = api.patch(
        "/api/auth/me/",
        {"email": "new@example.com", "current_password": PASSWORD},
        format="json",
        **auth_header(first["token"]),
    )
    assert response.status_code == 200
    key = verify_key(only_mail_to("new@example.com"))
    assert api.post("/api/auth/email/verify/", {"key": key}, format="json").status_code == 204
    # From the same device: no new-device e-mail.
    assert log_in(api, "new@example.com", device=first["device"]).status_code == 200
    assert log_in(api, "abc@example.com").status_code == 401
    assert len(mail.outbox) == 2  # the key, then the notice to the old address
    assert Session.objects.count() == 2


def test_an_address_that_starts_like_a_generated_name_is_not_reserved(api):
    # Accounts opened for an identity are named by their address here, never ext-….
    response = register(api, email="ext-abc@example.com")
    assert response.status_code == 201, response.content
    assert get_user_model().objects.get().email == "ext-abc@example.com"
