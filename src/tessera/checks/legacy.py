"""Where the class accepting imported DRF/knox tokens sits among the authenticators."""

from __future__ import annotations

from django.core.checks import CheckMessage, Error
from rest_framework.settings import api_settings

from ..authentication import ImportedTokenAuthentication

LEGACY_CLASSES = frozenset(
    {"rest_framework.authentication.TokenAuthentication", "knox.auth.TokenAuthentication"}
)


def check_authentication_order(app_configs=None, **kwargs) -> list[CheckMessage]:
    """An old library's class ahead of ours would accept tokens Tessera has revoked."""
    try:
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    except ImportError:
        return []  # DRF reports a class it cannot import itself.
    for position, authentication_class in enumerate(classes):
        if issubclass(authentication_class, ImportedTokenAuthentication):
            legacy = [c for c in classes[:position] if _dotted_names(c) & LEGACY_CLASSES]
            if legacy:
                return [
                    Error(
                        f"{legacy[0].__module__}.{legacy[0].__qualname__} comes before "
                        "ImportedTokenAuthentication: it would still accept an imported "
                        "token after Tessera revoked it (logout, password change).",
                        hint="Move tessera.authentication.ImportedTokenAuthentication ahead of it "
                        "in REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'].",
                        obj="REST_FRAMEWORK",
                        id="tessera.E030",
                    )
                ]
            return []
    return []


def _dotted_names(cls: type) -> set[str]:
    return {f"{base.__module__}.{base.__qualname__}" for base in cls.__mro__}
