"""Request and response shapes of Tessera's endpoints, one module per feature.

- :mod:`.fields`: the password field, the primary-key field, the address field and the
  shapes every feature shares (the error body).
- :mod:`.sessions`: password login, the session list, the login responses.
- :mod:`.accounts`: the ``user`` in responses, sign-up, ``me/``, passwords, verification.
- :mod:`.jwt` and :mod:`.tokens`: the JWT endpoints and personal access tokens.
- :mod:`.mfa` and :mod:`.webauthn`: second factors, and passkeys with their WebAuthn
  options.

The three a project may replace through settings are importable from here:
``USER_SERIALIZER``, ``REGISTER_SERIALIZER`` and ``ME_SERIALIZER`` default to
``tessera.serializers.UserSerializer``, ``.RegisterSerializer`` and ``.MeSerializer``.
"""

from .accounts import MeSerializer, RegisterSerializer, UserSerializer
from .fields import ErrorSerializer, PasswordField

__all__ = [
    "ErrorSerializer",
    "MeSerializer",
    "PasswordField",
    "RegisterSerializer",
    "UserSerializer",
]
