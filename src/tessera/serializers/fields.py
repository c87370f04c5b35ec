"""Fields and shapes every feature's serializers share."""

from __future__ import annotations

import unicodedata

from rest_framework import serializers

PASSWORD_MIN_BYTES = 8
PASSWORD_MAX_BYTES = 4096


def identity_fields(user_model) -> list[str]:
    """``id`` and the identity fields the user model really has, in a stable order."""
    present = {f.name for f in user_model._meta.get_fields()}
    wanted = [
        user_model.USERNAME_FIELD,
        user_model.get_email_field_name(),
        "first_name",
        "last_name",
        "date_joined",
    ]
    return ["id"] + [name for name in dict.fromkeys(wanted) if name in present]


class PasswordField(serializers.CharField):
    """A password, taken as typed (never trimmed) and never echoed back.

    Bounded before any password validator or hasher sees it, so an oversized password
    costs nothing but reading the (bounded) body. A password being checked (``new``
    False: logins, confirmations) is at most 4096 characters; a new one is 8 to 4096
    bytes of UTF-8.
    """

    default_error_messages = {
        "password_too_short": f"The password must be at least {PASSWORD_MIN_BYTES} bytes long.",
        "password_too_long": f"The password must be at most {PASSWORD_MAX_BYTES} bytes long.",
    }

    def __init__(self, *, new: bool = False, **kwargs) -> None:
        self.new = new
        kwargs.setdefault("write_only", True)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("style", {"input_type": "password"})
        if not new:
            kwargs.setdefault("max_length", PASSWORD_MAX_BYTES)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        value = super().to_internal_value(data)
        if self.new:
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > PASSWORD_MAX_BYTES:
                self.fail("password_too_long")
            if size < PASSWORD_MIN_BYTES:
                self.fail("password_too_short")
        return value


class PrimaryKeyField(serializers.ReadOnlyField):
    """The object's primary key, whatever the model calls it.

    The schema gives it the type of the model's primary key (see schema_extensions); a
    plain ``ReadOnlyField(source="pk")`` is documented as a string, which an integer
    key contradicts.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("source", "pk")
        super().__init__(**kwargs)


def address_field(**kwargs) -> serializers.EmailField:
    # No UniqueValidator: whether an address is taken is the service's to answer (or to
    # hide, with PREVENT_ENUMERATION).
    return serializers.EmailField(max_length=254, **kwargs)


class EmptySerializer(serializers.Serializer):
    """No fields: the input of a view that reads no body (logout)."""


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The one error shape (see :mod:`tessera.errors`), declared for the schema."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()), required=False
    )


# Control and format characters (newlines, tabs, bidirectional overrides) and the line and
# paragraph separators: none belongs in a name, and each can make a name shown in an
# e-mail or a session list look like text of the page or message around it.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def refuse_unprintable(value: str) -> None:
    if any(unicodedata.category(char) in _UNPRINTABLE_CATEGORIES for char in value):
        raise serializers.ValidationError(
            "Must be one line of printable text: no control characters or line breaks.",
            code="control_character",
        )


def device_name_field(**options):
    """The ``device_name`` a login body may carry: one line of printable text."""
    return serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        default="",
        validators=[refuse_unprintable],
        **options,
    )
