"""Password reset (request, confirm) and password change."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from tessera import signals
from tessera.models import RevokeReason, Session
from tessera.services.passwords import ResetTokenGenerator

from .accounts_support import (
    NEW_PASSWORD,
    link_in,
    only_mail_to,
    reset_parts,
    snapshot,
)
from .conftest import PASSWORD, auth_header, create_user, receiving

pytestmark = pytest.mark.django_db
RESET = "/api/auth/password/reset/"
CONFIRM = "/api/auth/password/reset/confirm/"
CHANGE = "/api/auth/password/change/"


def ask_reset(api, email="alice@example.com"):
    return api.post(RESET, {"email": email}, format="json")


def confirm(api, uid, token, new_password=NEW_PASSWORD):
    return api.post(
        CONFIRM, {"uid": uid, "token": token, "new_password": new_password}, format="json"
    )


def reset_link(api, email="alice@example.com"):
    assert ask_reset(api, email).status_code == 202
    return reset_parts(only_mail_to(email))


# Request


def test_seed_reset_flow_ends_every_session(api, user, login):
    tokens = [login(device_name=f"d{i}")["token"] for i in range(2)]
    mail.outbox.clear()  # the second device's new-device e-mail
    uid, token = reset_link(api)
    with receiving(signals.password_reset, "user") as received:
        assert confirm(api, uid, token).status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert received == [user]
    assert set(Session.objects.values_list("revoke_reason", flat=True)) == {
        RevokeReason.PASSWORD_RESET
    }
    for old in tokens:
        assert api.get("/api/auth/me/", **auth_header(old)).status_code == 401
    assert [m.subject for m in mail.outbox][-1] == "Your password was changed"
    assert login(password=NEW_PASSWORD)["token"]


def test_the_link_comes_from_the_frontend_template_never_the_host_header(api, user):
    with override_settings(
        ALLOWED_HOSTS=["evil.example"],
        TESSERA={
            "FRONTEND_URLS": {"password_reset": "https://app.example.com/reset/{uid}/{token}"}
        },
    ):
        api.post(RESET, {"email": "alice@example.com"}, format="json", HTTP_HOST="evil.example")
    link = link_in(only_mail_to("alice@example.com"))
    assert link.startswith("https://app.example.com/reset/")
    assert "evil" not in mail.outbox[0].body


def test_request_answers_the_same_whether_or_not_the_account_exists(api, user):
    known = ask_reset(api, "alice@example.com")
    unknown = ask_reset(api, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert sorted(known.headers) == sorted(unknown.headers)
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    "submitted",
    [
        "alice@example.cοm",  # Greek omicron
        "alİce@example.com",  # dotted capital I
        "ALİCE@EXAMPLE.COM",
        "alice@exampl\u0435.com",  # Cyrillic e
        "ａlice@example.com",  # full-width a
    ],
)
def test_unicode_look_alikes_do_not_match(api, user, submitted):
    assert ask_reset(api, submitted).status_code in (202, 400)
    assert mail.outbox == []


@pytest.mark.parametrize(
    "stored,submitted",
    [("strasse@example.com", "straße@example.com"), ("kim@example.com", "\u212aim@example.com")],
    ids=["sharp-s", "kelvin-sign"],
)
def test_case_folding_look_alikes_do_not_match(api, stored, submitted):
    create_user("other", email=stored)
    assert ask_reset(api, submitted).status_code in (202, 400)
    assert mail.outbox == []


def test_ascii_case_does_not_matter_and_the_stored_address_is_used(api, user):
    assert ask_reset(api, "ALICE@Example.COM").status_code == 202
    assert only_mail_to("alice@example.com").to == ["alice@example.com"]


def test_inactive_and_passwordless_accounts_get_no_link(api, inactive_user, unusable_user):
    for email in ("carol@example.com", "dave@example.com"):
        assert ask_reset(api, email).status_code == 202
    assert mail.outbox == []


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"password_reset_email": "2/hour"}})
def test_request_is_throttled_per_address(api, user):
    for _ in range(2):
        assert ask_reset(api).status_code == 202
    response = ask_reset(api, "Alice@example.com")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert len(mail.outbox) == 2


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"password_reset_ip": "1/hour"}})
def test_request_is_throttled_per_ip(api, user):
    assert ask_reset(api, "one@example.com").status_code == 202
    assert ask_reset(api, "two@example.com").status_code == 429


@pytest.mark.parametrize("body", [{}, {"email": ""}, {"email": "not-an-address"}])
def test_request_bad_input(api, user, body):
    response = api.post(RESET, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert mail.outbox == []


# Confirm


def test_token_is_single_use(api, user):
    uid, token = reset_link(api)
    assert confirm(api, uid, token).status_code == 204
    before = snapshot()
    again = confirm(api, uid, token, "yet-another-passphrase-7")
    assert again.status_code == 400
    assert again.json() == {
        "code": "invalid_reset_token",
        "detail": "This password reset link is invalid, expired or already used.",
    }
    assert snapshot() == before


def test_token_expires(api, user):
    uid, token = reset_link(api)
    later = datetime.now() + timedelta(hours=1, seconds=1)
    before = snapshot()
    with mock.patch.object(ResetTokenGenerator, "_now", return_value=later):
        response = confirm(api, uid, token)
    assert response.json()["code"] == "invalid_reset_token"
    assert snapshot() == before


def test_token_within_its_lifetime_works(api, user):
    uid, token = reset_link(api)
    later = datetime.now() + timedelta(minutes=59)
    with mock.patch.object(ResetTokenGenerator, "_now", return_value=later):
        assert confirm(api, uid, token).status_code == 204


@pytest.mark.parametrize(
    "change",
    [
        lambda u: u.set_password("changed-elsewhere-99"),
        lambda u: setattr(u, "email", "new@example.com"),
        lambda u: setattr(u, "last_login", timezone.now()),
    ],
    ids=["password", "email", "last_login"],
)
def test_token_dies_when_password_email_or_last_login_changes(api, user, change):
    uid, token = reset_link(api)
    change(user)
    user.save()
    assert confirm(api, uid, token).json()["code"] == "invalid_reset_token"


def test_token_signed_with_the_tessera_key(api, user):
    uid, token = reset_link(api)
    with override_settings(TESSERA={"SIGNING_KEY": "another-signing-key-of-at-least-32-bytes"}):
        assert confirm(api, uid, token).json()["code"] == "invalid_reset_token"


def test_inactive_user_cannot_reset(api, user):
    uid, token = reset_link(api)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert confirm(api, uid, token).json()["code"] == "invalid_reset_token"


@pytest.mark.parametrize(
    "body,status,code,field",
    [
        ({"uid": "AAAA", "token": "x"}, 400, "invalid_reset_token", None),
        ({"uid": "!!!", "token": "1-2"}, 400, "invalid_reset_token", None),
        ({"uid": "", "token": "1-2"}, 400, "invalid", "uid"),
        ({"uid": "MQ", "token": "x" * 65}, 400, "invalid", "token"),
        ({"uid": "u" * 65, "token": "1-2"}, 400, "invalid", "uid"),
        ({"uid": "MQ"}, 400, "invalid", "token"),
        ({"uid": "MQ", "token": "1-2", "new_password": "short"}, 400, "invalid", "new_password"),
    ],
)
def test_confirm_bad_input(api, user, body, status, code, field):
    payload = {"new_password": NEW_PASSWORD, **body}
    before = snapshot()
    response = api.post(CONFIRM, payload, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    if field:
        assert field in response.json()["fields"]
    assert snapshot() == before


def test_weak_new_password_keeps_the_token_usable(api, user):
    uid, token = reset_link(api)
    before = snapshot()
    weak = confirm(api, uid, token, "password123")
    assert weak.status_code == 400
    assert weak.json()["fields"]["new_password"][0]["code"] == "password_too_common"
    assert snapshot() == before
    assert confirm(api, uid, token).status_code == 204


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"password_reset_confirm_ip": "2/hour"}})
def test_confirm_is_throttled_per_ip(api, user):
    for _ in range(2):
        assert confirm(api, "MQ", "1-2").status_code == 400
    assert confirm(api, "MQ", "1-2").status_code == 429


# Change


def change(api, token, current=PASSWORD, new=NEW_PASSWORD):
    return api.post(
        CHANGE,
        {"current_password": current, "new_password": new},
        format="json",
        **auth_header(token),
    )


def test_change_keeps_this_session_revokes_the_others_and_notifies(api, user, login):
    current, other = login()["token"], login()["token"]
    mail.outbox.clear()  # the second login's new-device e-mail
    with receiving(signals.password_changed, "user") as received:
        assert change(api, current).status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert received == [user]
    assert api.get("/api/auth/me/", **auth_header(current)).status_code == 200
    assert api.get("/api/auth/me/", **auth_header(other)).status_code == 401
    assert Session.objects.get(revoked_at__isnull=False).revoke_reason == (
        RevokeReason.PASSWORD_CHANGED
    )
    assert only_mail_to("alice@example.com").subject == "Your password was changed"


def test_password_change_voids_a_pending_email_change(api, user, login):
    intruder = login()["token"]
    response = api.patch(
        "/api/auth/me/",
        {"email": "evil@attacker.test", "current_password": PASSWORD},
        format="json",
        **auth_header(intruder),
    )
    assert response.status_code == 200
    key = re.search(r"verify-email/([A-Za-z0-9_-]{43})", mail.outbox[-1].body).group(1)
    owner = login()["token"]
    changed = api.post(
        "/api/auth/password/change/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        **auth_header(owner),
    )
    assert changed.status_code == 204
    refused = api.post("/api/auth/email/verify/", {"key": key}, format="json")
    assert refused.json()["code"] == "invalid_key"
    user.refresh_from_db()
    assert user.email == "alice@example.com"


@pytest.mark.parametrize(
    "current,new,field,code",
    [
        ("wrong-password", NEW_PASSWORD, "current_password", "wrong_password"),
        ("", NEW_PASSWORD, "current_password", "blank"),
        (PASSWORD, "short", "new_password", "password_too_short"),
        (PASSWORD, "password123", "new_password", "password_too_common"),
        (PASSWORD, "alice@example.com", "new_password", "password_too_similar"),
        (PASSWORD, "x" * 4097, "new_password", "password_too_long"),
    ],
)
def test_change_bad_input_changes_nothing(api, user, login, current, new, field, code):
    token = login()["token"]
    before = snapshot()
    response = change(api, token, current, new)
    assert response.status_code == 400
    assert code in [e["code"] for e in response.json()["fields"][field]]
    assert snapshot() == before
    assert mail.outbox == []


def test_change_needs_authentication(api, user):
    response = api.post(
        CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"current_password_user": "2/hour"}})
def test_wrong_current_passwords_are_throttled_per_user(api, user, login, hasher_calls):
    token = login()["token"]
    for _ in range(2):
        assert change(api, token, current="guess-guess").status_code == 400
    hasher_calls.reset_mock()
    response = change(api, token)
    assert response.status_code == 429
    assert hasher_calls.call_count == 0
