"""Which scopes a user holds, and which of them a session may use.

The scopes a project knows are declared in ``TESSERA['SCOPES']``. By default every user
holds all of them; ``TESSERA['USER_SCOPES']`` names a callable ``user -> iterable of
names`` to restrict that (names it returns that are not declared are ignored). A login
session (``Session.scopes is None``) uses every scope its user holds; a personal access
token uses those chosen at its creation that its user *still* holds, so taking a scope
away from a user takes it away from the user's tokens on their next request. An external
issuer's token whose entry maps a ``scopes_claim`` uses the scopes it carries that its
user holds; without that mapping, every scope its user holds.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from ..conf import tessera_settings
from ..models import Session
from ..tokens.external import ExternalToken


def declared_scopes() -> dict[str, str]:
    """``{name: description}`` of every scope, as configured."""
    return dict(tessera_settings.SCOPES)


def held_scopes(user) -> frozenset[str]:
    """The scopes ``user`` holds; none for an anonymous or inactive user."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    declared = frozenset(tessera_settings.SCOPES)
    hook = tessera_settings.USER_SCOPES
    if hook is None:
        return declared
    return declared & frozenset(import_string(hook)(user))


def granted_scopes(user, session) -> frozenset[str]:
    """The scopes a request authenticated as ``user`` with ``session`` may use.

    Credentials that are not Tessera sessions (Django's session cookie through DRF's
    SessionAuthentication, HTTP Basic) are the user's own login, so they get every
    scope the user holds, like a login session.
    """
    held = held_scopes(user)
    if isinstance(session, ExternalToken):
        chosen = session.scopes
    else:
        chosen = session.scopes if isinstance(session, Session) else None
    return held if chosen is None else held & frozenset(chosen)
