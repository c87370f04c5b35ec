"""Tessera's routes come in per-feature modules that a project can mount one by one."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from tessera.urls import urlpatterns as all_routes

from .conftest import PASSWORD, auth_header

pytestmark = pytest.mark.django_db
CREDENTIALS = {"username": "alice", "password": PASSWORD}


def test_tessera_urls_is_every_feature_module():
    from tessera.urls import (
        accounts,
        browser,
        events,
        jwt,
        mfa,
        registration,
        sessions,
        social,
        tokens,
        webauthn,
    )

    modules = [
        sessions,
        registration,
        accounts,
        browser,
        jwt,
        tokens,
        mfa,
        webauthn,
        events,
        social,
    ]
    assert [p.name for p in all_routes] == [p.name for m in modules for p in m.urlpatterns]


@override_settings(ROOT_URLCONF="tests.urls_without_signup")
def test_a_project_can_mount_tessera_without_sign_up(api, user):
    assert api.post("/api/auth/register/", {}, format="json").status_code == 404
    token = api.post("/api/auth/login/", CREDENTIALS, format="json").json()["token"]
    assert api.get("/api/auth/sessions/", **auth_header(token)).status_code == 200
    # Everything of an existing account stays: profile, password reset.
    assert api.get("/api/auth/me/", **auth_header(token)).status_code == 200
    reset = api.post("/api/auth/password/reset/", {"email": "alice@example.com"}, format="json")
    assert reset.status_code == 202
    assert api.post("/api/auth/jwt/", CREDENTIALS, format="json").status_code == 200
    assert reverse("tessera:jwt-refresh") == "/api/auth/jwt/refresh/"
