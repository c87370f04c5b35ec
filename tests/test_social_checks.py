"""SOCIAL_PROVIDERS entries are judged at start-up (tessera.E120-E125, W120)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tessera.checks import check_social_providers

OIDC = {"type": "oidc", "issuer": "https://id.example.test", "client_id": "app"}
GITHUB = {"type": "github", "client_id": "app", "client_secret": "s"}


def ids(**providers) -> list[str]:
    with override_settings(TESSERA={"SOCIAL_PROVIDERS": providers}):
        return [message.id for message in check_social_providers()]


@pytest.mark.parametrize(
    "entry",
    [
        OIDC,
        {**OIDC, "client_secret": "s", "algorithms": ["ES256", "PS256"], "trust_mfa": True},
        {**OIDC, "native_client_ids": ["ios", "android"], "link_verified_email": True},
        {**OIDC, "issuer": "http://127.0.0.1:18200", "redirect_uri": "https://app.test/cb/"},
        {"type": "oidc", "issuer": "https://id.example.test"},  # credentials in the admin
        {"type": "google", "client_id": "app", "scope": "openid email"},
        {"type": "microsoft", "client_id": "app", "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        {"type": "microsoft", "client_id": "app", "tenant": "consumers"},
        {**GITHUB, "signup": False},
        {"type": "google", "client_id": "app", "endpoint_hosts": ["oauth2.googleapis.com"]},
        {**OIDC, "endpoint_hosts": []},
        {**GITHUB, "authorize_url": "https://github.example.test/login/oauth/authorize"},
    ],
)
def test_good_entries_pass(entry):
    assert ids(acme=entry) == []


@pytest.mark.parametrize(
    ("name", "entry", "check_id"),
    [
        ("Acme", OIDC, "tessera.E120"),
        ("a/b", OIDC, "tessera.E120"),
        ("acme", "https://id.example.test", "tessera.E120"),
        ("acme", {**OIDC, "type": "saml"}, "tessera.E121"),
        ("acme", {**OIDC, "tenant": "x"}, "tessera.E121"),
        ("acme", {**GITHUB, "issuer": "https://github.com"}, "tessera.E121"),
        ("acme", {"type": "oidc", "client_id": "app"}, "tessera.E122"),
        ("acme", {**OIDC, "issuer": "http://id.example.test"}, "tessera.E122"),
        ("acme", {"type": "microsoft", "client_id": "app"}, "tessera.E122"),
        ("acme", {"type": "microsoft", "client_id": "app", "tenant": "common"}, "tessera.E122"),
        (
            "acme",
            {"type": "microsoft", "client_id": "app", "tenant": "contoso.com"},
            "tessera.E122",
        ),
        ("acme", {**GITHUB, "token_url": "http://github.example.test/t"}, "tessera.E122"),
        ("acme", {**OIDC, "client_id": ""}, "tessera.E123"),
        ("acme", {**OIDC, "client_secret": 5}, "tessera.E123"),
        ("acme", {"type": "oidc", "issuer": OIDC["issuer"], "client_secret": "s"}, "tessera.E123"),
        ("acme", {**OIDC, "algorithms": ["HS256"]}, "tessera.E124"),
        ("acme", {**OIDC, "algorithms": []}, "tessera.E124"),
        ("acme", {**OIDC, "trust_mfa": "yes"}, "tessera.E125"),
        ("acme", {**OIDC, "scope": "email"}, "tessera.E125"),
        ("acme", {**OIDC, "native_client_ids": "ios"}, "tessera.E125"),
        ("acme", {**OIDC, "redirect_uri": "http://app.test/cb/"}, "tessera.E125"),
        ("acme", {**GITHUB, "trust_mfa": True}, "tessera.W120"),
        ("acme", {**OIDC, "endpoint_hosts": "id.example.test"}, "tessera.E125"),
        ("acme", {**OIDC, "endpoint_hosts": ["https://id.example.test"]}, "tessera.E125"),
        ("acme", {**OIDC, "endpoint_hosts": ["Id.Example.test"]}, "tessera.E125"),
        ("acme", {**GITHUB, "endpoint_hosts": ["github.com"]}, "tessera.E121"),
    ],
)
def test_bad_entries_are_reported(name, entry, check_id):
    assert ids(**{name: entry}) == [check_id]


def test_no_providers_no_messages():
    assert ids() == []
