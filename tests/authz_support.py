"""Shared set-up for the authorization tests: demo scopes, seeded users, their tokens."""

from __future__ import annotations

from io import StringIO

import pytest
from demo import settings as demo_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tessera.models import SessionKind
from tessera.services.sessions import open_session

DEMO_SCOPES = demo_settings.TESSERA["SCOPES"]
ALL_SCOPES = sorted(DEMO_SCOPES)


@pytest.fixture
def demo_scopes(settings):
    """The demo project's scopes on top of the test settings."""
    settings.TESSERA = {**settings.TESSERA, "SCOPES": DEMO_SCOPES}


@pytest.fixture
def seeded(db, demo_scopes):
    """The demo users and roles, made by the real demo_seed command."""
    call_command("demo_seed", stdout=StringIO())
    return {user.username: user for user in get_user_model().objects.all()}


def token_for(user, *, scopes: list[str] | None = None, kind: str = SessionKind.TOKEN) -> str:
    """A fresh session's token: a login's (scopes None) or a personal access token's."""
    if kind == SessionKind.PAT and scopes is None:
        scopes = []
    return open_session(user, kind=kind, scopes=scopes, device_name="test").token


def pat_for(user, scopes: list[str]) -> str:
    return token_for(user, scopes=scopes, kind=SessionKind.PAT)


def auth(token: str | None) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
