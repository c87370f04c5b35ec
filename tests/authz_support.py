"""Credentials for the authorization tests: a login's token or a scoped personal token."""

from __future__ import annotations

from tessera.models import SessionKind
from tessera.services.sessions import open_session

from .conftest import SCOPES

ALL_SCOPES = sorted(SCOPES)


def token_for(user, *, scopes: list[str] | None = None, kind: str = SessionKind.TOKEN) -> str:
    """A fresh session's token: a login's (scopes None) or a personal access token's."""
    if kind == SessionKind.PAT and scopes is None:
        scopes = []
    return open_session(user, kind=kind, scopes=scopes, device_name="test").token


def pat_for(user, scopes: list[str]) -> str:
    return token_for(user, scopes=scopes, kind=SessionKind.PAT)
