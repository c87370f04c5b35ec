"""An authentication backend that puts Django's own password logins under Tessera's lockout.

Use it instead of Django's ModelBackend::

    AUTHENTICATION_BACKENDS = ["tessera.backends.LockoutModelBackend"]

Then every caller of ``django.contrib.auth.authenticate`` (the admin's login form, DRF's
browsable-API login, a project's own views) counts its failures in the same buckets as
Tessera's logins, reserved before the hasher runs (docs/lockout.md). A locked-out
attempt is refused without checking the password: the backend raises PermissionDenied,
so no later backend checks it either, and Django's form answers with its usual error,
preceded by a message saying why when the messages framework is installed.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from .errors import LockedOut, ServiceUnavailable
from .services import lockout

# Set on a request whose login attempt the lockout refused: the audit trail records it
# as "locked out", not also as a failed login.
REFUSED_ATTRIBUTE = "tessera_lockout_refused"


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if lockout.counted_by_caller():
            return super().authenticate(request, username, password, **kwargs)
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            reservation = lockout.reserve(request, username)
        except LockedOut as refusal:
            minutes = max(1, -(-refusal.wait // 60))
            self._refuse(
                request,
                _("Too many failed login attempts. Try again in %(minutes)d minute(s).")
                % {"minutes": minutes},
            )
        except ServiceUnavailable:
            self._refuse(request, _("Logins are unavailable for a moment. Try again shortly."))
        try:
            user = super().authenticate(request, username, password, **kwargs)
        except Exception:
            reservation.refund()
            raise
        if user is None:
            reservation.failed()
        else:
            reservation.refund()
        return user

    def _refuse(self, request, text: str):
        if request is not None:
            setattr(request, REFUSED_ATTRIBUTE, True)
            messages.error(request, text, fail_silently=True)
        # Stops authenticate() here: no other backend may check this password.
        raise PermissionDenied(text)
