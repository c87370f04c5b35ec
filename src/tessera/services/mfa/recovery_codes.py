"""Recovery codes: single-use codes for when the other factors are out of reach.

A set is MFA_RECOVERY_CODE_COUNT codes of 60 random bits, shown once when generated.
Only a keyed digest of each is stored (HMAC-SHA256 with SIGNING_KEY, over the user's id
and the code), so a leaked table reveals no code, a code is only ever one user's, and
using one is a single UPDATE on its digest: of concurrent uses exactly one succeeds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ...conf import tessera_settings
from ...errors import SecondFactorRefused
from ...models import Authenticator, AuthenticatorType, RecoveryCode

# Crockford's base32 alphabet: no I, L, O or U to misread.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LENGTH = 12
GROUP = 4


def generate(user) -> tuple[Authenticator, list[str]]:
    """A new set for ``user``, replacing any earlier set; the clear codes, once."""
    codes = [_new_code() for _ in range(tessera_settings.MFA_RECOVERY_CODE_COUNT)]
    now = timezone.now()
    with transaction.atomic():
        Authenticator.objects.filter(user=user, type=AuthenticatorType.RECOVERY_CODES).delete()
        authenticator = Authenticator.objects.create(
            user=user, type=AuthenticatorType.RECOVERY_CODES, confirmed_at=now
        )
        RecoveryCode.objects.bulk_create(
            RecoveryCode(authenticator=authenticator, digest=_digest(user, _normal(code)))
            for code in codes
        )
    return authenticator, codes


def is_enrolled(user) -> bool:
    return _unused(user).exists()


def remaining(user) -> int:
    return _unused(user).count()


def use(user, code: str, field: str) -> Authenticator:
    """Spend one of the user's unused codes; the set it belongs to."""
    normal = _normal(code)
    if len(normal) != LENGTH or not set(normal) <= set(ALPHABET):
        raise _incorrect(field)
    digest = _digest(user, normal)
    now = timezone.now()
    if not RecoveryCode.objects.filter(digest=digest, used_at__isnull=True).update(used_at=now):
        if RecoveryCode.objects.filter(digest=digest).exists():
            raise SecondFactorRefused(
                field, _("This recovery code was used already."), "code_reused"
            )
        raise _incorrect(field)
    authenticator = Authenticator.objects.get(recovery_codes__digest=digest)
    Authenticator.objects.filter(pk=authenticator.pk).update(last_used_at=now)
    authenticator.last_used_at = now
    return authenticator


def _unused(user):
    return RecoveryCode.objects.filter(
        authenticator__user=user,
        authenticator__type=AuthenticatorType.RECOVERY_CODES,
        used_at__isnull=True,
    )


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def _normal(code: str) -> str:
    """As typed, give or take case, spaces and dashes."""
    return code.lower().replace("-", "").replace(" ", "")


def _digest(user, normal: str) -> str:
    message = f"tessera.mfa.recovery:{user.pk}:{normal}".encode()
    return hmac.new(tessera_settings.signing_key, message, hashlib.sha256).hexdigest()


def _incorrect(field: str) -> SecondFactorRefused:
    return SecondFactorRefused(field, _("The code is not correct."), "invalid_code")
