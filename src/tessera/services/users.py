"""The user row as the flows need it."""

from __future__ import annotations

from django.contrib.auth import get_user_model


def fresh_user(user):
    """The user row as stored now, not the copy cached with the session."""
    return get_user_model()._default_manager.get(pk=user.pk)
