"""Password login: throttle, check the credentials, open a session."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model, user_logged_in

from ..conf import tessera_settings
from ..errors import InvalidCredentials
from ..models import SessionKind
from . import throttling
from .requests import client_key
from .sessions import IssuedToken, create_session
from .verification import require_verified


def login_rates() -> dict[str, str | None]:
    """LOGIN_THROTTLE_RATES over its defaults: a scope left out keeps its default rate.

    Only an explicit None switches a scope off, so configuring one scope can never
    silently disable the other.
    """
    return tessera_settings.LOGIN_THROTTLE_RATES


def resolve_username(identifier: str) -> str:
    """Map an e-mail address to the USERNAME_FIELD value it belongs to, if unambiguous.

    The identifier is passed on unchanged otherwise, and the password check then fails
    in exactly the way it does for an unknown user.
    """
    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    fields = tessera_settings.LOGIN_FIELDS
    if "email" not in fields or "@" not in identifier or email_field == user_model.USERNAME_FIELD:
        return identifier
    matches = list(
        user_model._default_manager.filter(**{f"{email_field}__iexact": identifier})
        .values_list(user_model.USERNAME_FIELD, flat=True)[:2]
    )
    return matches[0] if len(matches) == 1 else identifier


def check_credentials(request, identifier: str, password: str):
    """The user for these credentials, or InvalidCredentials.

    Attempts are counted before the password hasher runs. Django's ModelBackend runs the
    hasher once whether or not the user exists, and refuses inactive users only after
    that, so every failure costs the same and reads the same.
    """
    rates = login_rates()
    throttling.hit("login-ip", client_key(request), rates.get("ip"))
    username = resolve_username(identifier)
    # One bucket per account, whether it is named by username or by e-mail address.
    throttling.hit("login-username", username.casefold(), rates.get("username"))
    user = authenticate(request, username=username, password=password)
    # Backends such as AllowAllUsersModelBackend accept inactive users; Tessera does not.
    if user is None or not user.is_active:
        raise InvalidCredentials()
    # EMAIL_VERIFICATION='mandatory': checked only now, so that only someone who knows
    # the password learns the address is unverified (403 email_not_verified).
    require_verified(user)
    return user


def login(
    request, identifier: str, password: str, *, device_name: str = "",
    kind: str = SessionKind.TOKEN,
) -> IssuedToken:
    user = check_credentials(request, identifier, password)
    issued = create_session(user, kind=kind, request=request, device_name=device_name)
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return issued
