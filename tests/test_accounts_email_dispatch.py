"""The account e-mails leave the request path: the same work whether or not an account
exists, the e-mail sent once the response is written, failures logged and never answered.

What a request does is counted at the moment its response leaves the outermost
middleware (queries, templates rendered, e-mails sent); the e-mail is then looked for
once Django reports the request finished, which the test client does before it returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core import mail
from django.core.handlers.asgi import ASGIHandler
from django.core.mail.backends import locmem
from django.db import OperationalError, connection, transaction
from django.test import override_settings
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext

from tessera.models import EmailVerificationKey
from tessera.services import emails

from .accounts_support import NEW_PASSWORD, mails_to, only_mail_to, reset_parts, snapshot
from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

RESET = "/api/auth/password/reset/"
CONFIRM = "/api/auth/password/reset/confirm/"
RESEND = "/api/auth/email/verify/resend/"
ALICE = "alice@example.com"
NOBODY = "nobody@example.com"
WITH_SNAPSHOT = ["tests.test_accounts_email_dispatch.snapshot_at_response", *settings.MIDDLEWARE]


class Work:
    """What the request did by the time its response left the outermost middleware."""

    queries: list[str] | None = None
    templates: list[str] | None = None
    mails: int | None = None
    _capture: CaptureQueriesContext | None = None
    _rendered: list[str] = []


def snapshot_at_response(get_response):
    def middleware(request):
        response = get_response(request)
        Work.queries = [_shape(q["sql"]) for q in Work._capture.captured_queries]
        Work.templates = list(Work._rendered)
        Work.mails = len(mail.outbox)
        return response

    return middleware


def _shape(sql: str) -> str:
    """A statement without its literals: the same work on other values looks the same."""
    return re.sub(r"'(?:[^']|'')*'|\b\d+\b", "?", sql)


def _record_template(sender, template, **kwargs):
    Work._rendered.append(template.name)


@pytest.fixture
def work():
    Work._rendered = []
    template_rendered.connect(_record_template)
    try:
        with override_settings(MIDDLEWARE=WITH_SNAPSHOT):
            yield Work
    finally:
        template_rendered.disconnect(_record_template)


def measured(api, path: str, email: str) -> tuple[int, list[str], list[str], int]:
    """One request's status and the work done inside it (queries, templates, mails)."""
    mail.outbox.clear()
    Work._rendered.clear()
    with CaptureQueriesContext(connection) as capture:
        Work._capture = capture
        response = api.post(path, {"email": email}, format="json")
    return response.status_code, Work.queries, Work.templates, Work.mails


@pytest.mark.parametrize("path", [RESET, RESEND], ids=["password reset", "verification resend"])
def test_the_same_work_inside_the_request_with_or_without_an_account(api, user, work, path):
    # The client's own throttle counter exists before both requests compared.
    measured(api, path, "warm-up@example.com")
    with_account = measured(api, path, ALICE)
    delivered = list(mail.outbox)
    without_account = measured(api, path, NOBODY)
    assert with_account == without_account
    status, queries, templates, mails = with_account
    assert (status, templates, mails) == (202, [], 0)
    assert not any("auth_user" in query for query in queries), queries
    # Sent all the same, once the response had been written: to Alice only.
    assert [message.to for message in delivered] == [[ALICE]]
    assert mail.outbox == []


def test_the_reset_link_sent_after_the_response_works(api, user):
    assert api.post(RESET, {"email": ALICE}, format="json").status_code == 202
    uid, token = reset_parts(only_mail_to(ALICE))
    body = {"uid": uid, "token": token, "new_password": NEW_PASSWORD}
    assert api.post(CONFIRM, body, format="json").status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


# The dispatcher hook


QUEUED: list[dict] = []


def queue(notice: dict) -> None:
    """A task queue's stand-in: keeps the notice as a broker would, serialised."""
    QUEUED.append(json.loads(json.dumps(notice)))


def refuse(notice: dict) -> None:
    raise ConnectionError("broker down")


@pytest.fixture
def queued():
    QUEUED.clear()
    with override_settings(
        TESSERA={"EMAIL_DISPATCHER": "tests.test_accounts_email_dispatch.queue"}
    ):
        yield QUEUED


def test_a_dispatcher_gets_a_notice_without_secrets_and_a_worker_delivers_it(api, user, queued):
    before = snapshot()
    assert api.post(RESET, {"email": ALICE}, format="json").status_code == 202
    assert api.post(RESET, {"email": NOBODY}, format="json").status_code == 202
    # One notice each, whether or not the address has an account; nothing sent yet.
    assert queued == [
        {"kind": "password_reset", "email": ALICE},
        {"kind": "password_reset", "email": NOBODY},
    ]
    assert mail.outbox == []
    assert snapshot() == before
    for notice in queued:
        emails.deliver(notice)
    uid, token = reset_parts(only_mail_to(ALICE))
    body = {"uid": uid, "token": token, "new_password": NEW_PASSWORD}
    assert api.post(CONFIRM, body, format="json").status_code == 204


def test_a_verification_key_is_minted_by_the_worker_not_carried_in_the_notice(api, user, queued):
    assert api.post(RESEND, {"email": ALICE}, format="json").status_code == 202
    assert queued == [{"kind": "verification_resend", "email": ALICE}]
    assert not EmailVerificationKey.objects.exists()
    emails.deliver(queued[0])
    assert EmailVerificationKey.objects.filter(user=user).count() == 1
    assert len(mails_to(ALICE)) == 1


def test_a_password_change_notice_carries_the_user_id_only(api, user, login, queued):
    token = login()["token"]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.post("/api/auth/password/change/", body, format="json").status_code == 204
    assert queued == [
        {
            "kind": "message",
            "template": "password_changed",
            "to": ALICE,
            "user": str(user.pk),
            "context": {"reset": False},
        }
    ]
    emails.deliver(queued[0])
    assert "password" in only_mail_to(ALICE).subject.lower()


@override_settings(TESSERA={"EMAIL_DISPATCHER": "tests.test_accounts_email_dispatch.refuse"})
def test_a_failing_dispatcher_is_logged_and_never_answered(api, user, caplog):
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = api.post(RESET, {"email": ALICE}, format="json")
    assert response.status_code == 202
    assert "'password_reset' e-mail notice could not be dispatched" in caplog.text
    assert "broker down" in caplog.text
    assert ALICE not in caplog.text  # the notice's address is not logged


@override_settings(EMAIL_BACKEND="tests.test_accounts_register.BrokenBackend")
def test_a_failing_mail_backend_after_the_response_is_logged(api, user, caplog):
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = api.post(RESET, {"email": ALICE}, format="json")
    assert response.status_code == 202
    assert "'password_reset' e-mail failed" in caplog.text
    assert "SMTP down" in caplog.text


def test_a_worker_sees_a_failing_backend_so_its_queue_can_retry(user):
    with override_settings(EMAIL_BACKEND="tests.test_accounts_register.BrokenBackend"):
        with pytest.raises(emails.EmailNotSent):
            emails.deliver({"kind": "password_reset", "email": ALICE})


def test_a_notice_for_a_deleted_user_sends_nothing(user):
    notice = {"kind": "verification_key", "user": str(user.pk), "email": ALICE, "purpose": "verify"}
    user.delete()
    emails.deliver(notice)
    assert mail.outbox == []


def test_an_unknown_kind_of_notice_is_refused_where_it_is_made():
    with pytest.raises(ValueError, match="No e-mail notice"):
        emails.notify("welcome", email=ALICE)


# Outside a request


def test_outside_a_request_a_notice_waits_for_the_commit(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        emails.notify("password_reset", email=ALICE)
        assert mail.outbox == []
    assert len(mails_to(ALICE)) == 1


def test_outside_a_request_a_rolled_back_notice_is_never_sent(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            emails.notify("password_reset", email=ALICE)
            raise RuntimeError("rolled back")
    assert callbacks == []
    assert mail.outbox == []


# Under ASGI


async def asgi_post(path: str, body: dict) -> tuple[int, int]:
    """POST through Django's ASGI handler as a server runs it: the status, and how many
    e-mails had been sent when the last byte of the response was handed to the server."""
    sent: list[dict] = []
    mails_when_written: list[int] = []
    payload = json.dumps(body).encode()
    incoming = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive():
        if incoming:
            return incoming.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            mails_when_written.append(len(mail.outbox))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await ASGIHandler()(scope, receive, send)
    return sent[0]["status"], mails_when_written[0]


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_e_mail_is_sent_after_the_response(user):
    status, mails_when_written = async_to_sync(asgi_post)(RESET, {"email": ALICE})
    assert (status, mails_when_written) == (202, 0)
    assert [message.to for message in mail.outbox] == [[ALICE]]


# The database down


@pytest.mark.parametrize("path", [RESET, RESEND], ids=["password reset", "verification resend"])
def test_with_the_database_down_the_request_is_refused_not_accepted(api, user, queued, path):
    with mock.patch.object(emails, "require_database", side_effect=OperationalError("down")):
        response = api.post(path, {"email": ALICE}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert "Retry-After" in response
    assert queued == []


class SlowBackend(locmem.EmailBackend):
    """A distant mail server: each delivery takes 0.3 s, in the thread it ran in."""

    threads: list[str] = []

    def send_messages(self, messages):
        time.sleep(0.3)
        SlowBackend.threads.append(threading.current_thread().name)
        return super().send_messages(messages)


@pytest.mark.mail_in_background
@pytest.mark.django_db(transaction=True)
@override_settings(EMAIL_BACKEND="tests.test_accounts_email_dispatch.SlowBackend")
def test_by_default_a_slow_mail_server_does_not_delay_the_end_of_the_request(api, user):
    SlowBackend.threads = []
    durations = {}
    for address in (ALICE, NOBODY, ALICE):
        started = time.monotonic()
        # The test client returns once request_finished has run: the connection would close.
        assert api.post(RESET, {"email": address}, format="json").status_code == 202
        durations.setdefault(address, []).append(time.monotonic() - started)
    assert max(durations[ALICE] + durations[NOBODY]) < 0.2, durations
    assert emails.wait_for_pending(5)
    assert len(mails_to(ALICE)) == 2
    assert not mails_to(NOBODY)
    assert SlowBackend.threads == ["tessera-email", "tessera-email"]


@pytest.mark.mail_in_background
def test_a_full_background_queue_drops_the_notice_and_logs_it(monkeypatch, caplog):
    monkeypatch.setattr(emails, "BACKGROUND_QUEUE_SIZE", 1)
    monkeypatch.setattr(emails, "_background", None)
    blocked = threading.Event()
    monkeypatch.setattr(emails, "deliver", lambda notice: blocked.wait(5))
    with caplog.at_level(logging.ERROR, logger="tessera"):
        for _ in range(3):  # one being delivered, one waiting, one too many
            emails.deliver_in_background({"kind": "password_reset", "email": ALICE})
            time.sleep(0.05)
    blocked.set()
    assert emails.wait_for_pending(5)
    assert "e-mail queue is full: a 'password_reset' e-mail was dropped" in caplog.text
    assert ALICE not in caplog.text


@pytest.mark.mail_in_background
def test_a_failing_background_delivery_is_logged_and_the_thread_goes_on(monkeypatch, caplog):
    delivered = []

    def deliver(notice):
        if notice["kind"] == "message":
            raise RuntimeError("template missing")
        delivered.append(notice)

    monkeypatch.setattr(emails, "deliver", deliver)
    with caplog.at_level(logging.ERROR, logger="tessera"):
        emails.deliver_in_background({"kind": "message", "to": ALICE})
        emails.deliver_in_background({"kind": "password_reset", "email": ALICE})
        assert emails.wait_for_pending(5)
    assert "Delivering the 'message' e-mail failed" in caplog.text
    assert delivered == [{"kind": "password_reset", "email": ALICE}]
