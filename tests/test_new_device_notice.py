"""The new-device e-mail and its "this wasn't me" link (sessions/not-me/).

A login from a device the account has not used before e-mails the account after the
response, naming the device, IP and time, with a signed link that ends that session (or
every session) once. Known devices, the account's very first login and the setting off
send nothing.
"""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tessera import signals
from tessera.conf import tessera_settings
from tessera.models import (
    EventType,
    ForgottenDevice,
    RevokeReason,
    SecurityEvent,
    Session,
    UsedNoticeLink,
)
from tessera.services import buckets, device_notices, devices, emails

from .accounts_support import link_in, mails_to
from .concurrency import run_together
from .conftest import PASSWORD, auth_header, create_user, receiving, requires_postgres
from .mfa_support import mfa_ticket, second_factor
from .test_accounts_email_dispatch import QUEUED, Work, work  # noqa: F401 (work: a fixture)
from .test_webauthn_login import passwordless
from .webauthn_authenticator import SoftAuthenticator
from .webauthn_support import passkeys_on_fixture, register_passkey  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

ALICE = "alice@example.com"
NOT_ME = "/api/auth/sessions/not-me/"
PROTECTED = "/api/protected/"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def alice(user):
    """Alice, who has logged in before: her next login from a new device is reported."""
    get_user_model().objects.filter(pk=user.pk).update(last_login=timezone.now())
    user.refresh_from_db()
    return user


def log_in(client: APIClient, path: str = "/api/auth/login/", **fields):
    body = {"username": "alice", "password": PASSWORD, **fields}
    response = client.post(
        path, body, format="json", HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="203.0.113.9"
    )
    assert response.status_code == 200, response.content
    return response.json()


def notices() -> list:
    return [m for m in mails_to(ALICE) if "new login" in m.subject.lower()]


def only_notice():
    found = notices()
    assert len(found) == 1, [m.subject for m in mail.outbox]
    return found[0]


def link_token(message) -> str:
    link = link_in(message)
    assert link.startswith("http://localhost:3000/not-me/")
    return unquote(link.rsplit("/", 1)[1])


def not_me(client: APIClient, token: str, **body):
    return client.post(NOT_ME, {"token": token, **body}, format="json")


def live(token: str) -> bool:
    return APIClient().get(PROTECTED, **auth_header(token)).status_code == 200


def state() -> tuple:
    """What a use of a link may change: the sessions, the used links, the events."""
    return (
        sorted(Session.objects.values_list("pk", "revoked_at", "revoke_reason")),
        sorted(UsedNoticeLink.objects.values_list("nonce_digest", "session_id")),
        sorted(ForgottenDevice.objects.values_list("device_key", "forgotten_at")),
        SecurityEvent.objects.count(),
    )


# --- When the e-mail is sent ----------------------------------------------------------


def test_a_new_device_gets_one_email_naming_device_ip_time_and_a_link(api, alice):
    body = log_in(api, device_name="Work laptop")
    message = only_notice()
    session = Session.objects.get(pk=body["session"]["id"])
    assert message.to == [ALICE]
    for text in (message.body, message.alternatives[0][0]):
        assert "Work laptop" in text
        assert "Firefox" in text
        assert "203.0.113.9" in text
        assert session.created_at.strftime("%Y-%m-%d %H:%M") in text
    payload = device_notices.read_link_token(link_token(message))
    assert (payload["s"], payload["u"]) == (str(session.pk), str(alice.pk))


def test_what_the_client_sent_is_escaped_in_the_html_part(api, alice):
    log_in(api, device_name='<a href="https://evil.example">Security team</a>')
    html = only_notice().alternatives[0][0]
    assert "&lt;a href=&quot;https://evil.example&quot;&gt;" in html
    assert 'href="https://evil.example"' not in html


@pytest.mark.parametrize(
    "path",
    ["/api/auth/login/", "/api/auth/jwt/", "/api/auth/jwt/sliding/", "/api/auth/session/login/"],
    ids=str,
)
@pytest.mark.parametrize(
    "name", ["Phone\nThis was you: verify at http://evil.example", "Tab\there", "Bidi\u202eenil"]
)
def test_a_device_name_that_is_not_one_printable_line_is_refused(api, alice, path, name):
    before = state()
    body = {"username": "alice", "password": PASSWORD, "device_name": name}
    response = api.post(path, body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["device_name"][0]["code"] == "control_character"
    assert state() == before
    assert mail.outbox == []


def test_sign_up_refuses_a_device_name_with_a_line_break(api, db):
    body = {
        "username": "bob",
        "email": "bob@example.com",
        "password": PASSWORD,
        "device_name": "Phone\r\nBcc: x",
    }
    response = api.post("/api/auth/register/", body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["device_name"][0]["code"] == "control_character"
    assert not get_user_model().objects.filter(username="bob").exists()


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"new_device_notice_client": None}})
def test_the_device_name_is_quoted_on_one_line_and_truncated(api, alice):
    # A name stored before logins refused line breaks (or by another path) is made safe too.
    body = log_in(api, device_name="Work laptop")
    Session.objects.filter(pk=body["session"]["id"]).update(
        device_name="Phone\nIf this was you, confirm at http://evil.example " + "x" * 40
    )
    mail.outbox.clear()
    device_notices.deliver_notice(body["session"]["id"])
    message = only_notice()
    line = next(t for t in message.body.splitlines() if t.startswith("Device name"))
    assert line.startswith(
        "Device name (as the device gave it): “Phone If this was you, confirm at http"
    )
    assert line.endswith("x…”")
    assert len(line.split(": ", 1)[1]) == device_notices.DEVICE_NAME_SHOWN + 2
    assert "Browser or app (as the device gave it): “Mozilla/5.0" in message.body


def test_a_known_device_gets_none(api, alice):
    device = devices.issue_device(alice, "laptop")
    log_in(api, device=device)
    assert notices() == []


def test_the_device_a_login_answers_with_is_known_at_the_next_login(api, alice):
    device = log_in(api)["device"]
    mail.outbox.clear()
    log_in(api, device=device)
    assert notices() == []


def test_a_browser_holding_the_device_cookie_is_known(alice):
    browser = APIClient()
    log_in(browser, "/api/auth/session/login/")
    mail.outbox.clear()
    log_in(browser, "/api/auth/session/login/")
    assert notices() == []


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"new_device_notice_client": None}})
def test_a_password_change_forgets_the_other_devices(api, alice):
    login = log_in(api)
    other = log_in(api)["device"]
    body = {"current_password": PASSWORD, "new_password": "a-brand-new-passphrase-42"}
    changed = api.post(
        "/api/auth/password/change/", body, format="json", **auth_header(login["token"])
    )
    assert changed.status_code == 204
    mail.outbox.clear()
    # The device that changed it is still known: its owner is not told about themselves.
    log_in(api, password="a-brand-new-passphrase-42", device=login["device"])
    assert notices() == []
    log_in(api, password="a-brand-new-passphrase-42", device=other)
    assert len(notices()) == 1


def test_a_device_of_another_account_counts_as_new(api, alice, other_user):
    log_in(api, device=devices.issue_device(other_user, "laptop"))
    assert len(notices()) == 1


def test_the_first_login_of_an_account_sends_none_and_the_next_one_does(api, user):
    assert user.last_login is None
    log_in(api)
    assert notices() == []
    log_in(api)
    assert len(notices()) == 1


@override_settings(TESSERA={"PREVENT_ENUMERATION": False, "REGISTER_AUTO_LOGIN": True})
def test_the_login_a_sign_up_opens_sends_none(api, db):
    body = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}
    response = api.post("/api/auth/register/", body, format="json")
    assert response.status_code == 201
    assert "token" in response.json()
    assert not [m for m in mails_to("carol@example.com") if "new login" in m.subject.lower()]


def test_without_a_last_login_earlier_sessions_still_count_as_logins(api, user):
    """A user model (or a project) that keeps no last_login is judged by its sessions."""
    log_in(api)
    get_user_model().objects.filter(pk=user.pk).update(last_login=None)
    log_in(api)
    assert len(notices()) == 1


@override_settings(TESSERA={"NEW_DEVICE_NOTICE": False})
def test_switched_off_it_sends_none(api, alice):
    log_in(api)
    assert notices() == []


def test_an_account_without_an_address_gets_none(api, alice):
    get_user_model().objects.filter(pk=alice.pk).update(email="")
    log_in(api)
    assert mail.outbox == []


def test_a_login_that_waits_for_its_second_factor_notifies_when_it_completes(api, alice_mfa):
    get_user_model().objects.filter(pk=alice_mfa.user.pk).update(last_login=timezone.now())
    ticket = mfa_ticket(api)
    assert notices() == []
    assert second_factor(api, ticket, code=alice_mfa.next_code()).status_code == 200
    assert len(notices()) == 1


@pytest.mark.parametrize(
    "path", ["/api/auth/login/", "/api/auth/jwt/", "/api/auth/jwt/sliding/"], ids=str
)
def test_every_kind_of_login_notifies(api, alice, path):
    log_in(api, path)
    assert len(notices()) == 1


def test_a_browser_login_notifies(alice):
    browser = APIClient()
    log_in(browser, "/api/auth/session/login/")
    assert len(notices()) == 1


@pytest.mark.usefixtures("passkeys_on")
def test_a_passkey_login_notifies(api, alice):
    key = SoftAuthenticator()
    register_passkey(api, auth_header(log_in(api)["token"]), key, passwordless=True)
    mail.outbox.clear()
    assert passwordless(APIClient(), key).status_code == 200
    assert len(notices()) == 1


def test_the_signal_names_the_new_session(api, alice):
    with receiving(signals.new_device_login, "session") as received:
        body = log_in(api)
    assert [str(session.pk) for session in received] == [body["session"]["id"]]


# --- How many are sent ------------------------------------------------------------------


def log_in_as(agent: str, address: str = "203.0.113.9") -> dict:
    """A login by a client that never presents the device it was given (a script)."""
    response = APIClient().post(
        "/api/auth/login/",
        {"username": "alice", "password": PASSWORD},
        format="json",
        HTTP_USER_AGENT=agent,
        REMOTE_ADDR=address,
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_client_that_keeps_no_device_mails_its_user_once_a_day(alice, monkeypatch):
    for _ in range(5):
        log_in_as("backup-script/1.0")
    assert len(notices()) == 1
    # Another place is another device to announce: another address, another program.
    log_in_as("backup-script/1.0", address="198.51.100.7")
    log_in_as("curl/8.5")
    assert len(notices()) == 3
    later = time.time() + 86_400
    monkeypatch.setattr(buckets.time, "time", lambda: later)
    log_in_as("backup-script/1.0")
    assert len(notices()) == 4


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"new_device_notice_user": "3/day"}})
def test_an_account_gets_at_most_its_daily_notices_from_any_number_of_places(alice):
    for number in range(6):
        log_in_as(f"client-{number}")
    assert len(notices()) == 3
    # Refused notices still leave the login in the account's own audit trail.
    assert SecurityEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED).count() == 6


@override_settings(
    TESSERA={
        "ACCOUNT_THROTTLE_RATES": {
            "new_device_notice_client": None,
            "new_device_notice_user": None,
        }
    }
)
def test_the_notice_rates_can_be_switched_off(alice):
    for _ in range(3):
        log_in_as("backup-script/1.0")
    assert len(notices()) == 3


# --- Out of the request path ------------------------------------------------------------


def at_response(client: APIClient, **fields) -> tuple[list[str], list[str], int]:
    """A login's queries, templates and e-mails by the time its response was written."""
    mail.outbox.clear()
    Work._rendered.clear()
    with CaptureQueriesContext(connection) as capture:
        Work._capture = capture
        log_in(client, **fields)
    return Work.queries, Work.templates, Work.mails


@pytest.mark.usefixtures("work")
def test_the_email_is_sent_after_the_response(api, alice):
    _queries, templates, mails = at_response(api)
    assert (templates, mails) == ([], 0)
    assert len(notices()) == 1


@pytest.mark.usefixtures("work")
def test_a_new_device_costs_the_login_the_same_work_as_a_known_one(alice):
    known, new = APIClient(), APIClient()
    # Both present a device, so that the lockout's lookup of the account (done whenever
    # one is presented) is the same on both sides: the new one is another account's.
    someone_else = create_user("mallory")
    with_known = at_response(known, device=devices.issue_device(alice, "laptop"))
    with_new = at_response(new, device=devices.issue_device(someone_else, "laptop"))
    assert len(notices()) == 1
    assert without_savepoint_names(with_new) == without_savepoint_names(with_known)


def without_savepoint_names(done: tuple) -> tuple:
    queries, *rest = done
    return ([re.sub(r'"s\d+_x\d+"', '"?"', query) for query in queries], *rest)


@override_settings(TESSERA={"EMAIL_DISPATCHER": "tests.test_accounts_email_dispatch.queue"})
def test_the_notice_carries_the_session_id_only_and_a_worker_mints_the_link(api, alice):
    QUEUED.clear()
    body = log_in(api)
    assert QUEUED == [{"kind": "new_device", "session": body["session"]["id"]}]
    assert mail.outbox == []
    emails.deliver(QUEUED[0])
    assert not_me(api, link_token(only_notice())).status_code == 200


def test_a_session_ended_before_delivery_is_still_reported(api, alice):
    with override_settings(
        TESSERA={"EMAIL_DISPATCHER": "tests.test_accounts_email_dispatch.queue"}
    ):
        QUEUED.clear()
        token = log_in(api)["token"]
    api.post("/api/auth/logout/", **auth_header(token))
    emails.deliver(QUEUED[0])
    assert len(notices()) == 1


@pytest.mark.parametrize("change", ["deleted", "inactive"])
def test_nothing_is_sent_for_a_user_gone_by_delivery(api, alice, change):
    with override_settings(
        TESSERA={"EMAIL_DISPATCHER": "tests.test_accounts_email_dispatch.queue"}
    ):
        QUEUED.clear()
        log_in(api)
    if change == "deleted":
        alice.delete()
    else:
        get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    emails.deliver(QUEUED[0])
    assert mail.outbox == []


# --- The link ---------------------------------------------------------------------------


@pytest.fixture
def two_devices(alice):
    """Alice's known device's token, the new device's token, and the new one's link."""
    known = log_in(APIClient(), device=devices.issue_device(alice, "laptop"))["token"]
    intruder = log_in(APIClient(), device_name="Unknown phone")["token"]
    return known, intruder, link_token(only_notice())


def test_the_link_ends_exactly_that_session(api, two_devices):
    known, intruder, token = two_devices
    with receiving(signals.login_reported) as reported:
        response = not_me(api, token)
    assert response.status_code == 200
    assert response.json() == {"revoked": 1}
    assert not live(intruder)
    assert live(known)
    ended = Session.objects.get(revoked_at__isnull=False)
    assert ended.revoke_reason == RevokeReason.NOT_ME
    assert ended.device_name == "Unknown phone"
    assert [(r["session"].pk, r["all_sessions"], r["revoked"]) for r in reported] == [
        (ended.pk, False, 1)
    ]
    event = SecurityEvent.objects.get(type=EventType.LOGIN_REPORTED)
    assert (event.user_id, event.session_id) == (ended.user_id, ended.pk)
    assert event.detail == {"all_sessions": False, "revoked": 1}
    assert SecurityEvent.objects.filter(
        type=EventType.SESSION_REVOKED, detail__reason=RevokeReason.NOT_ME
    ).exists()


def test_all_ends_every_session_of_the_account(api, two_devices, other_user):
    known, intruder, token = two_devices
    bob = log_in(APIClient(), username="bob")["token"]
    response = not_me(api, token, all=True)
    assert response.json() == {"revoked": 2}
    assert not live(intruder)
    assert not live(known)
    assert live(bob)
    event = SecurityEvent.objects.get(type=EventType.LOGIN_REPORTED)
    assert event.detail == {"all_sessions": True, "revoked": 2}


@pytest.mark.parametrize("second", [{}, {"all": True}], ids=["one", "all"])
def test_a_second_use_is_refused_and_changes_nothing(api, two_devices, second):
    known, _intruder, token = two_devices
    assert not_me(api, token).status_code == 200
    before = state()
    response = not_me(api, token, **second)
    assert response.status_code == 400
    assert response.json()["code"] == "notice_link_used"
    assert state() == before
    assert live(known)


def test_the_link_of_a_session_ended_meanwhile_still_ends_the_others(api, two_devices):
    known, intruder, token = two_devices
    api.post("/api/auth/logout/", **auth_header(intruder))
    assert not_me(api, token).json() == {"revoked": 0}
    assert live(known)


def test_the_link_of_a_session_deleted_since_still_ends_every_session(api, two_devices):
    known, _intruder, token = two_devices
    payload = device_notices.read_link_token(token)
    Session.objects.filter(pk=payload["s"]).delete()
    with receiving(signals.login_reported, "session") as reported:
        assert not_me(api, token, all=True).json() == {"revoked": 1}
    assert reported == [None]
    assert not live(known)


def test_the_link_of_a_deleted_account_is_refused(api, two_devices, alice):
    _known, _intruder, token = two_devices
    alice.delete()
    assert not_me(api, token).json()["code"] == "invalid_notice_link"
    assert UsedNoticeLink.objects.count() == 0


def test_the_link_forgets_the_reported_device_and_only_that_one(api, alice):
    laptop = log_in(APIClient(), device=devices.issue_device(alice, "laptop"))["device"]
    intruder = log_in(APIClient(), device_name="Unknown phone")
    assert devices.known_device_key(alice, intruder["device"]) == intruder["session"]["id"]
    assert not_me(api, link_token(only_notice())).status_code == 200
    assert devices.known_device_key(alice, intruder["device"]) is None
    assert devices.known_device_key(alice, laptop) == "laptop"
    # Presented again, from where it logged in before: announced again at once, under
    # the account's own lockout, and given a key of its own.
    mail.outbox.clear()
    again = log_in(APIClient(), device=intruder["device"])
    assert len(notices()) == 1
    assert devices.known_device_key(alice, again["device"]) == again["session"]["id"]


def test_the_link_ends_every_session_the_reported_device_opened(api, alice):
    laptop = log_in(APIClient(), device=devices.issue_device(alice, "laptop"))["token"]
    intruder = log_in(APIClient(), device_name="Unknown phone")
    # Logging in again with the identifier it was given: no e-mail of its own.
    again = log_in(APIClient(), device=intruder["device"])
    assert len(notices()) == 1
    response = not_me(api, link_token(only_notice()))
    assert response.json() == {"revoked": 2}
    assert not live(intruder["token"]) and not live(again["token"])
    assert live(laptop)


def test_all_forgets_every_device_of_the_account(api, alice, other_user, monkeypatch):
    laptop = log_in(APIClient(), device=devices.issue_device(alice, "laptop"))["device"]
    intruder = log_in(APIClient())["device"]
    bobs = log_in(APIClient(), username="bob")["device"]
    assert not_me(api, link_token(only_notice()), all=True).status_code == 200
    assert devices.known_device_key(alice, laptop) is None
    assert devices.known_device_key(alice, intruder) is None
    assert devices.known_device_key(other_user, bobs) is not None
    # A device that logs in after that is known again from then on.
    mail.outbox.clear()
    later = time.time() + devices.FORGET_MARGIN.total_seconds() + 1
    monkeypatch.setattr(devices.time, "time", lambda: later)
    fresh = log_in(APIClient(), device=laptop)["device"]
    assert len(notices()) == 1
    assert devices.known_device_key(alice, fresh) is not None


def tampered(token: str) -> list[str]:
    value, signature = token.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [value + ":" + flipped, "x" + token, token[:-1], "not-a-link", ":::"]


def test_a_tampered_link_is_refused_and_changes_nothing(api, two_devices):
    known, intruder, token = two_devices
    before = state()
    for bad in tampered(token):
        response = not_me(api, bad)
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid_notice_link", bad
    assert state() == before
    assert live(intruder)


def test_another_signed_value_is_not_a_link(api, two_devices, alice):
    """Signatures of other purposes (a device id) and of other keys do not pass."""
    _known, intruder, token = two_devices
    payload = device_notices.read_link_token(token)
    forged = [
        devices.issue_device(alice, "laptop"),
        signing.dumps(payload, key="another-key-" * 4, salt=device_notices.SALT),
        signing.dumps(payload, key=tessera_settings.signing_key, salt="another.salt"),
    ]
    for bad in forged:
        assert not_me(api, bad).json()["code"] == "invalid_notice_link"
    assert live(intruder)


def test_a_link_cannot_end_another_accounts_session(api, two_devices, other_user):
    """The link binds session and account: even a value signed with the right key that
    pairs Alice with Bob's session is refused."""
    _known, _intruder, token = two_devices
    bob = log_in(APIClient(), username="bob")["token"]
    bob_session = Session.objects.get(user=other_user)
    payload = {**device_notices.read_link_token(token), "s": str(bob_session.pk)}
    mixed = signing.dumps(payload, key=tessera_settings.signing_key, salt=device_notices.SALT)
    response = not_me(api, mixed)
    assert response.json()["code"] == "invalid_notice_link"
    assert live(bob)


def test_an_expired_link_is_refused_and_changes_nothing(api, two_devices, monkeypatch):
    _known, intruder, token = two_devices
    lifetime = tessera_settings.NEW_DEVICE_NOTICE_LINK_TTL.total_seconds()
    later = time.time() + lifetime + 1
    monkeypatch.setattr(signing.time, "time", lambda: later)
    before = state()
    response = not_me(api, token)
    assert response.status_code == 400
    assert response.json()["code"] == "notice_link_expired"
    assert state() == before
    monkeypatch.undo()
    assert live(intruder)


def test_the_body_is_validated(api, alice):
    response = api.post(NOT_ME, {"all": True}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["token"][0]["code"] == "required"
    response = not_me(api, "x" * 513)
    assert response.json()["fields"]["token"][0]["code"] == "max_length"


@override_settings(TESSERA={"ACCOUNT_THROTTLE_RATES": {"not_me_ip": "2/hour"}})
def test_the_endpoint_is_throttled_per_client(api, alice):
    for _ in range(2):
        assert not_me(api, "not-a-link").status_code == 400
    response = not_me(api, "not-a-link")
    assert response.status_code == 429
    assert response["Retry-After"]


def test_a_revocation_that_cannot_reach_the_cache_is_503_and_the_link_still_works(
    api, two_devices, monkeypatch
):
    _known, intruder, token = two_devices
    cache = caches["default"]

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    before = state()
    with monkeypatch.context() as patch:
        patch.setattr(cache, "set_many", broken)
        patch.setattr(cache, "delete_many", broken)
        response = not_me(api, token)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert state() == before
    assert not_me(api, token).status_code == 200
    assert not live(intruder)


def test_clearsessions_forgets_used_links_only_once_they_have_expired(api, two_devices, clock):
    _known, _intruder, token = two_devices
    assert not_me(api, token).status_code == 200
    call_command("tessera_clearsessions", stdout=open("/dev/null", "w"))
    assert UsedNoticeLink.objects.count() == 1
    clock.advance(seconds=tessera_settings.NEW_DEVICE_NOTICE_LINK_TTL.total_seconds() + 1)
    call_command("tessera_clearsessions", stdout=open("/dev/null", "w"))
    assert UsedNoticeLink.objects.count() == 0


def test_clearsessions_keeps_forgotten_devices_while_their_identifiers_live(alice, clock):
    devices.forget_device(alice, "laptop")
    devices.forget_all_devices(alice)
    call_command("tessera_clearsessions", stdout=open("/dev/null", "w"))
    assert ForgottenDevice.objects.count() == 2
    clock.advance(seconds=tessera_settings.DEVICE_LIFETIME.total_seconds() + 2 * 86_400)
    call_command("tessera_clearsessions", stdout=open("/dev/null", "w"))
    assert ForgottenDevice.objects.count() == 0


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_uses_of_one_link_end_the_session_once(attempt):
    alice = create_user("alice", email=ALICE)
    get_user_model().objects.filter(pk=alice.pk).update(last_login=timezone.now())
    log_in(APIClient())
    token = link_token(only_notice())

    def use(_index):
        return not_me(APIClient(), token, all=True)

    responses = run_together(8, use)
    codes = sorted(r.json().get("code", "ok") if r.status_code != 200 else "ok" for r in responses)
    assert codes == ["notice_link_used"] * 7 + ["ok"]
    assert UsedNoticeLink.objects.count() == 1
    assert SecurityEvent.objects.filter(type=EventType.LOGIN_REPORTED).count() == 1
