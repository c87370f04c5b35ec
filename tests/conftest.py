from __future__ import annotations

import os
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import caches
from django.utils import timezone
from rest_framework.test import APIClient

from .testapp.seed import seed_roles_and_users

POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
REDIS = bool(os.environ.get("REDIS_URL"))

requires_postgres = pytest.mark.skipif(
    not POSTGRES,
    reason="needs PostgreSQL (set DATABASE_URL=postgres://…): SQLite has no row locks",
)
requires_redis = pytest.mark.skipif(
    not REDIS, reason="needs Redis (set REDIS_URL=redis://…) for a cache shared by processes"
)

PASSWORD = "correct-horse-battery-staple"
# The scopes the test app's tokens may be given (see docs/permissions.md).
SCOPES = {
    "read": "Read access.",
    "write": "Write access.",
    "posts:read": "Read your own posts.",
    "posts:write": "Create, change and delete posts.",
}
real_now = timezone.now


@pytest.fixture(autouse=True)
def _clear_cache():
    for cache in caches.all():
        cache.clear()
    yield
    for cache in caches.all():
        cache.clear()


class Clock:
    """A controllable ``timezone.now`` so tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = real_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


@pytest.fixture
def hasher_calls():
    """Count every password hash computed (checks and dummy hashes alike)."""
    with mock.patch.object(
        MD5PasswordHasher, "encode", autospec=True, side_effect=MD5PasswordHasher.encode
    ) as spy:
        yield spy


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password=PASSWORD
    )


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(
        username="bob", email="bob@example.com", password=PASSWORD
    )


@pytest.fixture
def login(api):
    """Log in through the endpoint; returns the response JSON."""

    def do_login(username: str = "alice", password: str = PASSWORD, **extra):
        response = api.post(
            "/api/auth/login/", {"username": username, "password": password, **extra},
            format="json",
        )
        assert response.status_code == 200, response.content
        return response.json()

    return do_login


@pytest.fixture
def app_scopes(settings):
    """The test app's scopes on top of the test settings."""
    settings.TESSERA = {**settings.TESSERA, "SCOPES": SCOPES}


@pytest.fixture
def seeded(db, app_scopes) -> dict:
    """The test app's roles and one user in each, by username."""
    seed_roles_and_users(PASSWORD)
    return {user.username: user for user in get_user_model().objects.all()}


def auth_header(token: str | None, keyword: str = "Token") -> dict:
    """The Authorization header carrying ``token``; none at all for an anonymous caller."""
    return {"HTTP_AUTHORIZATION": f"{keyword} {token}"} if token else {}
