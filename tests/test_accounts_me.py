"""me/: read, update, change of address with re-verification, deactivation and deletion."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from tessera import signals
from tessera.models import EmailAddress, EmailVerificationKey, RevokeReason, Session
from tessera.serializers import MeSerializer
from tessera.services.verification import same_address

from .accounts_support import only_mail_to, snapshot, verify_key
from .conftest import PASSWORD, auth_header, create_user, receiving

pytestmark = pytest.mark.django_db
ME = "/api/auth/me/"


@pytest.fixture
def token(user, login):
    return login()["token"]


def patch(api, token, **body):
    return api.patch(ME, body, format="json", **auth_header(token))


def test_get_returns_the_default_fields(api, user, token):
    user.groups.add(Group.objects.create(name="Manager"), Group.objects.create(name="HR"))
    body = api.get(ME, **auth_header(token)).json()
    assert set(body) == {
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "date_joined",
        "email_verified",
        "roles",
    }
    assert (body["id"], body["username"], body["email"]) == (user.pk, "alice", user.email)
    assert body["email_verified"] is False
    assert body["roles"] == ["HR", "Manager"]


def test_email_verified_reflects_the_current_address(api, user, token):
    EmailAddress.objects.create(user=user, email="Alice@example.com", verified_at=timezone.now())
    assert api.get(ME, **auth_header(token)).json()["email_verified"] is True
    get_user_model().objects.filter(pk=user.pk).update(email="elsewhere@example.com")
    fresh = get_user_model().objects.get(pk=user.pk)
    assert MeSerializer(fresh).data["email_verified"] is False


def test_anonymous_is_401(api):
    response = api.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_patch_names(api, user, token):
    response = patch(api, token, first_name="Alice", last_name="Liddell")
    assert response.status_code == 200
    assert (response.json()["first_name"], response.json()["last_name"]) == ("Alice", "Liddell")
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Alice", "Liddell")


def test_patch_cannot_touch_protected_fields(api, user, token):
    response = patch(
        api,
        token,
        username="mallory",
        is_staff=True,
        is_superuser=True,
        id=999,
        date_joined="2000-01-01T00:00:00Z",
        email_verified=True,
        roles=["Admin"],
        groups=[1],
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.username, user.is_staff, user.is_superuser, user.pk) == (
        "alice",
        False,
        False,
        response.json()["id"],
    )
    assert user.date_joined.year != 2000
    assert not EmailAddress.objects.exists() and not user.groups.exists()


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"first_name": "x" * 151}, "first_name", "max_length"),
        ({"email": "not-an-address"}, "email", "invalid"),
        ({"email": "new@example.com"}, "current_password", "required"),
        (
            {"email": "new@example.com", "current_password": "wrong"},
            "current_password",
            "wrong_password",
        ),
        (
            {"email": "new@example.com", "current_password": "x" * 4097},
            "current_password",
            "max_length",
        ),
        (
            {"email": "new@example.com", "first_name": "Changed", "current_password": "nope"},
            "current_password",
            "wrong_password",
        ),
    ],
)
def test_patch_bad_input_changes_nothing(api, user, token, body, field, code):
    before = snapshot()
    response = patch(api, token, **body)
    assert response.status_code == 400
    assert response.json()["fields"][field][0]["code"] == code
    assert snapshot() == before
    assert get_user_model().objects.get(pk=user.pk).first_name == ""
    assert mail.outbox == []


def test_changing_the_address_waits_for_verification_then_notifies_the_old_one(api, user, token):
    response = patch(api, token, email="New@Example.com", current_password=PASSWORD)
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"  # unchanged until verified
    message = only_mail_to("New@example.com")
    assert message.subject == "Confirm your new e-mail address"
    with receiving(signals.email_changed) as changes:
        assert (
            api.post(
                "/api/auth/email/verify/", {"key": verify_key(message)}, format="json"
            ).status_code
            == 204
        )
    user.refresh_from_db()
    assert user.email == "New@example.com"
    assert api.get(ME, **auth_header(token)).json()["email_verified"] is True
    assert [(c["old_email"], c["new_email"]) for c in changes] == [
        ("alice@example.com", "New@example.com")
    ]
    notice = only_mail_to("alice@example.com")
    assert notice.subject == "Your e-mail address was changed"
    assert "New@example.com" in notice.body


def test_an_address_in_use_gets_a_notice_instead_of_a_key(api, user, other_user, token):
    before = snapshot()
    response = patch(api, token, email="BOB@example.com", current_password=PASSWORD)
    assert response.status_code == 200
    assert snapshot() == before
    assert only_mail_to("BOB@example.com").subject == "You already have an account"


@override_settings(TESSERA={"PREVENT_ENUMERATION": False})
def test_an_address_in_use_is_a_field_error_without_enumeration_protection(
    api, user, other_user, token
):
    response = patch(api, token, email="bob@example.com", current_password=PASSWORD)
    assert response.status_code == 400
    assert response.json()["fields"]["email"][0]["code"] == "unique"


def test_an_address_taken_before_the_key_is_used_is_refused(api, user, token):
    patch(api, token, email="new@example.com", current_password=PASSWORD)
    key = verify_key(only_mail_to("new@example.com"))
    create_user("eve", email="new@example.com")
    before = snapshot()
    response = api.post("/api/auth/email/verify/", {"key": key}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "email_taken")
    assert snapshot() == before


def test_same_address_again_needs_no_password(api, user, token):
    response = patch(api, token, email="alice@example.com", first_name="A")
    assert response.status_code == 200
    assert not EmailVerificationKey.objects.exists()


def test_same_address_compares_ascii_case_only():
    assert same_address("Alice@Example.com", "alice@example.COM")
    assert not same_address("strasse@example.com", "straße@example.com")
    assert not same_address("kim@example.com", "\u212aim@example.com")


# Deletion


def delete(api, token, password=PASSWORD):
    return api.delete(ME, {"password": password}, format="json", **auth_header(token))


def test_delete_deactivates_by_default_and_revokes_every_session(api, user, login):
    tokens = [login()["token"] for _ in range(3)]
    assert delete(api, tokens[0]).status_code == 204
    user.refresh_from_db()
    assert user.is_active is False
    assert set(Session.objects.values_list("revoke_reason", flat=True)) == {
        RevokeReason.DEACTIVATED
    }
    for token in tokens:
        assert api.get(ME, **auth_header(token)).status_code == 401


@override_settings(TESSERA={"ACCOUNT_DELETION": "delete"})
def test_delete_can_remove_the_row(api, user, login):
    tokens = [login()["token"] for _ in range(2)]
    for token in tokens:  # warm the cache: the deleted rows must not live on in it
        assert api.get(ME, **auth_header(token)).status_code == 200
    assert delete(api, tokens[0]).status_code == 204
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    for token in tokens:
        assert api.get(ME, **auth_header(token)).status_code == 401


@pytest.mark.parametrize("body,code", [({"password": "wrong"}, "wrong_password"), ({}, "required")])
def test_delete_bad_password_changes_nothing(api, user, token, body, code):
    before = snapshot()
    response = api.delete(ME, body, format="json", **auth_header(token))
    assert response.status_code == 400
    assert response.json()["fields"]["password"][0]["code"] == code
    assert snapshot() == before


class RenamingMeSerializer(MeSerializer):
    """A project's profile serializer that lets users rename themselves."""

    class Meta(MeSerializer.Meta):
        read_only_fields = ["date_joined"]


@pytest.fixture
def renaming(settings):
    settings.TESSERA = {**settings.TESSERA, "ME_SERIALIZER": f"{__name__}.RenamingMeSerializer"}


@pytest.mark.parametrize("username", ["ext-0123456789abcdef01234567", "Ext-alice"])
def test_a_rename_to_the_reserved_prefix_is_refused(api, user, token, renaming, username):
    response = patch(api, token, username=username)
    assert response.status_code == 400, response.content
    assert response.json()["fields"]["username"][0]["code"] == "reserved"
    user.refresh_from_db()
    assert user.username == "alice"


def test_an_account_opened_for_an_identity_keeps_its_name(api, renaming, login):
    create_user("ext-0123456789abcdef01234567", email="ext@example.com")
    token = login(username="ext-0123456789abcdef01234567")["token"]
    response = patch(api, token, username="ext-0123456789abcdef01234567", first_name="E")
    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "E"


def test_a_rename_elsewhere_is_allowed(api, user, token, renaming):
    response = patch(api, token, username="alice2")
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.username == "alice2"
