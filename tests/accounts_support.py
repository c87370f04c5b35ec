"""Helpers shared by the account-flow tests: e-mail parsing, hasher spy, DB snapshots."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core import mail

from tessera.models import EmailAddress, EmailVerificationKey, Session

NEW_PASSWORD = "a-brand-new-passphrase-42"
_LINK = re.compile(r"https?://\S+")


def mails_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def only_mail_to(address: str):
    messages = mails_to(address)
    assert len(messages) == 1, [m.subject for m in mail.outbox]
    return messages[0]


def link_in(message) -> str:
    """The one front-end link of an e-mail, checked to be the same in text and HTML."""
    links = [link for link in _LINK.findall(message.body) if "/login" not in link]
    assert len(links) == 1, message.body
    html = message.alternatives[0][0]
    assert f'href="{links[0]}"' in html
    return links[0]


def reset_parts(message) -> tuple[str, str]:
    uid, token = link_in(message).rstrip("/").split("/")[-2:]
    return uid, token


def verify_key(message) -> str:
    return link_in(message).rstrip("/").split("/")[-1]


def snapshot() -> dict:
    """Everything an account endpoint may change, to prove a refused request changed nothing."""
    user_model = get_user_model()
    return {
        "users": sorted(
            user_model._default_manager.values_list(
                "pk",
                user_model.USERNAME_FIELD,
                user_model.get_email_field_name(),
                "password",
                "is_active",
                "is_staff",
                "is_superuser",
                "last_login",
            )
        ),
        "addresses": sorted(EmailAddress.objects.values_list("user_id", "email", "verified_at")),
        "keys": sorted(EmailVerificationKey.objects.values_list("key_digest", "used_at")),
        "sessions": sorted(
            (str(pk), revoked) for pk, revoked in Session.objects.values_list("pk", "revoked_at")
        ),
    }
