"""Request and response shapes of the account endpoints.

``REGISTER_SERIALIZER`` and ``ME_SERIALIZER`` name the two a project may replace; a
replacement should subclass these so the password bounds and the protection against
mass assignment (only declared fields are read) stay in place.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from ..permissions import roles_of
from ..services.external_identities import GENERATED_USERNAME_PREFIX, is_generated_username
from ..services.verification import is_verified
from .fields import (
    PasswordField,
    PrimaryKeyField,
    address_field,
    device_name_field,
    identity_fields,
)

UID_MAX_LENGTH = 64
RESET_TOKEN_MAX_LENGTH = 64
KEY_MAX_LENGTH = 64


class UserSerializer(serializers.ModelSerializer):
    """The default ``user`` in responses: identity fields the user model actually has."""

    id = PrimaryKeyField()

    class Meta:
        model = get_user_model()
        fields = identity_fields(model)
        read_only_fields = fields


def _in_normal_form(data, user_model, names: list[str]):
    """The body with the named identities in NFKC, the form they are stored in.

    Django's ``create_user`` applies NFKC to the username anyway; doing it before the
    fields validate means the length and format checks see what the database will hold
    (NFKC may lengthen a value), and the address is stored in the form it is compared
    in, so a look-alike sign-up sends its mail to the genuine mailbox.
    """
    if not isinstance(data, Mapping):
        return data  # the serializer refuses it with its own error
    normal = data.copy()
    for name in names:
        value = data.get(name)
        if isinstance(value, str):
            normal[name] = (
                user_model.normalize_username(value)
                if name == user_model.USERNAME_FIELD
                else unicodedata.normalize("NFKC", value)
            )
    return normal


def refuse_generated_username(value, field):
    """Keep the names of accounts opened for a provider's identity out of anyone's reach
    (an account keeps the name it has)."""
    instance = getattr(field.parent, "instance", None)
    if instance is not None and getattr(instance, field.source, None) == value:
        return
    if isinstance(value, str) and is_generated_username(value):
        raise serializers.ValidationError(
            f"Usernames starting with {GENERATED_USERNAME_PREFIX!r} are reserved.",
            code="reserved",
        )


refuse_generated_username.requires_context = True


def _guard_username(fields, user_model):
    username = fields.get(user_model.USERNAME_FIELD)
    if username is not None and not username.read_only:
        username.validators = [*username.validators, refuse_generated_username]


def _register_fields(user_model) -> list[str]:
    wanted = [
        user_model.USERNAME_FIELD,
        user_model.get_email_field_name(),
        *user_model.REQUIRED_FIELDS,
    ]
    return list(dict.fromkeys(wanted))


class RegisterSerializer(serializers.ModelSerializer):
    """The sign-up body: the login field, the address, the model's REQUIRED_FIELDS and
    the password. Anything else in the body (``is_staff``, ``groups``…) is ignored."""

    password = PasswordField(new=True)
    device_name = device_name_field(
        write_only=True, help_text="Names the session when REGISTER_AUTO_LOGIN is on."
    )

    class Meta:
        model = get_user_model()
        fields = [*_register_fields(model), "password", "device_name"]

    def get_fields(self):
        fields = super().get_fields()
        fields[self.Meta.model.get_email_field_name()] = address_field()
        for field in fields.values():
            field.validators = [v for v in field.validators if not isinstance(v, UniqueValidator)]
        _guard_username(fields, self.Meta.model)
        return fields

    def to_internal_value(self, data):
        user_model = self.Meta.model
        names = [user_model.USERNAME_FIELD, user_model.get_email_field_name()]
        return super().to_internal_value(_in_normal_form(data, user_model, names))

    def validate(self, attrs):
        email_field = self.Meta.model.get_email_field_name()
        attrs[email_field] = BaseUserManager.normalize_email(attrs[email_field])
        return attrs

    def account_fields(self) -> dict:
        """The validated values that become the new user's fields."""
        return {
            name: value
            for name, value in self.validated_data.items()
            if name not in ("password", "device_name")
        }


def _read_only_profile_fields(user_model) -> list[str]:
    """The login name and join date, unless the login name is the address itself."""
    email_field = user_model.get_email_field_name()
    return [name for name in (user_model.USERNAME_FIELD, "date_joined") if name != email_field]


class MeSerializer(serializers.ModelSerializer):
    """The signed-in user's profile. Changing the address needs ``current_password``
    and takes effect once the new address is verified."""

    id = PrimaryKeyField()
    email_verified = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()
    current_password = PasswordField(required=False)

    class Meta:
        model = get_user_model()
        fields = [*identity_fields(model), "email_verified", "roles", "current_password"]
        read_only_fields = _read_only_profile_fields(model)

    def get_fields(self):
        fields = super().get_fields()
        email_field = self.Meta.model.get_email_field_name()
        if email_field in fields:
            fields[email_field] = address_field(required=False)
        _guard_username(fields, self.Meta.model)
        return fields

    def to_internal_value(self, data):
        user_model = self.Meta.model
        names = [user_model.get_email_field_name()]
        return super().to_internal_value(_in_normal_form(data, user_model, names))

    def validate(self, attrs):
        email_field = self.Meta.model.get_email_field_name()
        if email_field in attrs:
            attrs[email_field] = BaseUserManager.normalize_email(attrs[email_field])
        return attrs

    def get_email_verified(self, user) -> bool:
        return is_verified(user)

    def get_roles(self, user) -> list[str]:
        request = self.context.get("request")
        if request is not None and getattr(request.user, "pk", None) == user.pk:
            return sorted(roles_of(request))
        groups = getattr(user, "groups", None)
        return sorted(groups.values_list("name", flat=True)) if groups is not None else []


class RegisterResponseSerializer(serializers.Serializer):
    detail = serializers.CharField(
        required=False, help_text="With PREVENT_ENUMERATION: the one answer to every sign-up."
    )
    user = serializers.DictField(required=False, help_text="Without PREVENT_ENUMERATION.")
    token = serializers.CharField(required=False, help_text="With REGISTER_AUTO_LOGIN.")


class PasswordChangeSerializer(serializers.Serializer):
    current_password = PasswordField()
    new_password = PasswordField(new=True)


class PasswordResetSerializer(serializers.Serializer):
    email = address_field()


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=UID_MAX_LENGTH)
    token = serializers.CharField(max_length=RESET_TOKEN_MAX_LENGTH)
    new_password = PasswordField(new=True)


class EmailVerifySerializer(serializers.Serializer):
    key = serializers.CharField(max_length=KEY_MAX_LENGTH)


class EmailResendSerializer(serializers.Serializer):
    email = address_field()


class AccountDeleteSerializer(serializers.Serializer):
    password = PasswordField()
