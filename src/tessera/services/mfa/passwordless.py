"""Passwordless login: a discoverable passkey that verified its user is the whole login.

The request options name no user and allow any key (``allowCredentials`` empty), so the
authenticator offers the passkeys it stores for the relying party; the assertion then
names its key, and the key its user. Possession of the key (``hwk``) and the user
verification it performed (``user``) are two factors, so the session's amr is
``["hwk", "user", "mfa"]`` and no second factor is asked for. The login enters the
pipeline at :func:`~tessera.services.login.complete_login`, like every other.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ...conf import tessera_settings
from .. import login, throttling
from ..client import client_key
from ..verification import require_verified
from . import methods, webauthn


def options(request) -> dict[str, Any]:
    """Request options for a login that names no user.

    Anyone may ask, and each answer stores a challenge, so asking counts against the
    client's login rate, in its own bucket so that asking does not use up logins.
    """
    rate = tessera_settings.LOGIN_THROTTLE_RATES.get("ip")
    throttling.hit("passkey-options-ip", client_key(request), rate)
    return webauthn.passwordless_options()


def log_in(request, credential: Any, intent: login.LoginIntent) -> Any:
    """Log in with the assertion ``credential``, ending in what ``intent`` asks for.

    Counted like a password login (per client IP) before anything is verified. The
    challenge's use, the new signature count and the session commit together, so a login
    refused at the last step (a session limit) spends none of them.
    """
    throttling.hit("login-ip", client_key(request), tessera_settings.LOGIN_THROTTLE_RATES.get("ip"))
    with transaction.atomic():
        assertion = webauthn.verify_passwordless(credential)
        user = assertion.authenticator.user
        # As for a password: only the key's holder learns the address is unverified.
        require_verified(user)
        result = login.complete_login(
            request, user, intent, amr=methods.combined_amr(assertion.amr)
        )
    methods.announce_use(request, user, methods.Verified(assertion.authenticator, assertion.amr))
    return result
