"""MFA_REQUIRED: whom a second factor is required of."""

from __future__ import annotations

from ...conf import tessera_settings

EVERYONE = "all"


def covers(user) -> bool:
    """Whether MFA_REQUIRED asks ``user`` for a second factor.

    A list names roles (groups), as :class:`~tessera.permissions.HasAnyRole` reads them;
    a list with ADMIN_ROLE covers superusers too, whom :class:`~tessera.permissions.IsAdmin`
    counts as admins whatever their groups. At most one query.
    """
    required = tessera_settings.MFA_REQUIRED
    if not required:
        return False
    if required == EVERYONE:
        return True
    roles = {required} if isinstance(required, str) else set(required)
    if tessera_settings.ADMIN_ROLE in roles and getattr(user, "is_superuser", False):
        return True
    groups = getattr(user, "groups", None)
    return groups is not None and groups.filter(name__in=roles).exists()
