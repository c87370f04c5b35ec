"""The e-mails of the account flows and the front-end links they carry.

Each e-mail is three Django templates a project can override by putting files of the
same name earlier on its template path: ``tessera/email/<name>_subject.txt``,
``<name>.txt`` and ``<name>.html``. Links come from ``TESSERA['FRONTEND_URLS']``, never
from the request's ``Host`` header, which the client controls.

No e-mail is built or sent inside a request. A flow records a *notice* (plain,
JSON-serialisable data naming what to send and to whom, never a reset token or a key),
and the notices of a request are handed to ``TESSERA['EMAIL_DISPATCHER']`` once Django
reports the request finished: after the WSGI server has written the response, and after
every transaction of the request has ended. Looking the account up, minting its token or
key, rendering and sending all happen in :func:`deliver`, so a request for an address
with an account does exactly the work of one for an address without: no timing tell.

The default dispatcher, :func:`deliver_in_background`, hands each notice to one daemon
thread per process that calls :func:`deliver`: the request's thread returns to the server
at once, so the connection closes (and a keep-alive client's next request is served) just
as soon whether or not an e-mail is being sent, which would otherwise tell who has an
account. The queue is bounded and lives in memory: a notice that finds it full is dropped
and logged, and notices still waiting when the process exits are sent only on a
best-effort basis. A production site should point the setting at a function that queues a
task which calls :func:`deliver` in a worker (docs/accounts.md shows Celery and RQ).

A failure to send is logged, never answered: the response has been sent already.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import string
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.core.signals import request_finished, request_started
from django.db import connections, router, transaction
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from ..conf import tessera_settings

logger = logging.getLogger("tessera")

# The placeholders each front-end link must contain, and the only ones it may.
LINK_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "password_reset": frozenset({"uid", "token"}),
    "verify_email": frozenset({"key"}),
    "login": frozenset(),
    "social_callback": frozenset({"code"}),
    "social_error": frozenset({"error"}),
    "social_linked": frozenset({"provider"}),
    "not_me": frozenset({"token"}),
}


def placeholders(template: str) -> set[str]:
    """The ``{name}`` fields of a link template; raises ValueError on bad syntax."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def frontend_url(name: str, **values: str) -> str:
    """The link ``name`` with each value URL-quoted into its placeholder."""
    return tessera_settings.FRONTEND_URLS[name].format_map(
        {k: quote(v, safe="") for k, v in values.items()}
    )


def duration_text(value: timedelta) -> str:
    """``3 days``, ``1 hour``: a lifetime as the e-mails state it (rounded down)."""
    seconds = max(0, int(value.total_seconds()))
    units = (("day", 86400), ("hour", 3600), ("minute", 60))
    unit, size = next(((u, s) for u, s in units if seconds >= s), ("second", 1))
    count = seconds // size
    return f"{count} {unit}{'' if count == 1 else 's'}"


class EmailNotSent(Exception):
    """The e-mail backend failed; the failure has been logged with its traceback."""


def send(name: str, to: str, context: dict[str, Any]) -> None:
    """Render and send one e-mail now; raises :class:`EmailNotSent` when the backend fails.

    Only :func:`deliver` and the notice handlers call this: a flow records a notice.
    """
    context = {
        "site_name": tessera_settings.SITE_NAME,
        "login_url": frontend_url("login"),
        **context,
    }
    subject = render_to_string(f"tessera/email/{name}_subject.txt", context)
    # A header cannot span lines: a template ending in a newline must not break it.
    subject = " ".join(subject.split())
    message = EmailMultiAlternatives(
        subject,
        render_to_string(f"tessera/email/{name}.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        [to],
    )
    message.attach_alternative(render_to_string(f"tessera/email/{name}.html", context), "text/html")
    try:
        message.send()
    except Exception as exc:
        user = context.get("user")
        logger.exception("Sending the %r e-mail failed (user %s).", name, getattr(user, "pk", None))
        raise EmailNotSent(name) from exc


# What each kind of notice runs, by dotted path: the handlers live with the flow that owns
# their rule, and a task worker importing only this module still finds them.
HANDLERS: dict[str, str] = {
    "password_reset": "tessera.services.passwords.deliver_reset_links",
    "verification_resend": "tessera.services.verification.deliver_resend",
    "verification_key": "tessera.services.verification.deliver_key",
    "message": "tessera.services.emails.deliver_message",
    "new_device": "tessera.services.device_notices.deliver_notice",
}

# The notices of the request this thread serves (``notices`` unset outside a request).
# A thread, not a context variable: under ASGI, Django runs request_started's receivers in
# a task of their own, whose context the view never sees, but every synchronous step of
# one request (the receivers, the view, the response's close) in one thread of its own.
_request = threading.local()


def notify(kind: str, **fields: Any) -> None:
    """Record one notice (``fields`` JSON-serialisable) to be dispatched later.

    During a request: once the request has finished. Outside one (a shell, a command, a
    task): once the current transaction commits, at once in autocommit.
    """
    if kind not in HANDLERS:
        raise ValueError(f"No e-mail notice is called {kind!r}.")
    notice = {"kind": kind, **fields}
    pending = getattr(_request, "notices", None)
    if pending is not None:
        pending.append(notice)
    else:
        transaction.on_commit(partial(dispatch, notice))


def notify_message(template: str, to: str, user=None, **context: Any) -> None:
    """Record one e-mail of ``template`` whose context is ``user`` and plain data only."""
    notify(
        "message",
        template=template,
        to=to,
        user=None if user is None else str(user.pk),
        context=context,
    )


def require_database() -> None:
    """One round trip to the users' database, the same for every request.

    A flow that defers all of its lookups (reset, resend) would otherwise answer 202
    while the database is down and its e-mail could never be sent: the DatabaseError
    raised here is answered 503 with Retry-After by the exception handler.
    """
    with connections[router.db_for_read(get_user_model())].cursor() as cursor:
        cursor.execute("SELECT 1")


def dispatch(notice: dict[str, Any]) -> None:
    """Hand one notice to EMAIL_DISPATCHER; whatever fails is logged, never raised."""
    try:
        import_string(tessera_settings.EMAIL_DISPATCHER)(notice)
    except EmailNotSent:
        pass  # logged with its traceback where it happened
    except Exception:
        # The notice is not logged: it carries an address.
        logger.exception("The %r e-mail notice could not be dispatched.", notice.get("kind"))


def deliver(notice: dict[str, Any]) -> None:
    """Do what a notice asks: look the account up, mint what the e-mail carries, send.

    What the default EMAIL_DISPATCHER's thread and a task queue's worker call with the notice it
    was given. Raises when sending fails, so a task queue can retry it.
    """
    fields = dict(notice)
    handler: Callable[..., None] = import_string(HANDLERS[fields.pop("kind")])
    handler(**fields)


# Enough for a burst of sign-ups; beyond it mail is dropped, never waited for.
BACKGROUND_QUEUE_SIZE = 1000


class _Background:
    """The delivering thread of this process and the notices waiting for it."""

    def __init__(self) -> None:
        self.notices: queue.Queue[dict[str, Any]] = queue.Queue(BACKGROUND_QUEUE_SIZE)
        self.pending = 0
        self.idle = threading.Condition()
        self.thread = threading.Thread(target=self.run, name="tessera-email", daemon=True)
        self.thread.start()

    def put(self, notice: dict[str, Any]) -> None:
        with self.idle:
            self.pending += 1
        try:
            self.notices.put_nowait(notice)
        except queue.Full:
            self._done()
            logger.error("The e-mail queue is full: a %r e-mail was dropped.", notice.get("kind"))

    def run(self) -> None:
        while True:
            notice = self.notices.get()
            try:
                deliver(notice)
            except EmailNotSent:
                pass  # logged with its traceback where it happened
            except Exception:
                logger.exception("Delivering the %r e-mail failed.", notice.get("kind"))
            finally:
                # This thread's connections: none stays open while it waits.
                connections.close_all()
                self._done()

    def _done(self) -> None:
        with self.idle:
            self.pending -= 1
            self.idle.notify_all()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.idle.wait(remaining)
        return True


_background: _Background | None = None
_background_pid: int | None = None
_background_lock = threading.Lock()


def deliver_in_background(notice: dict[str, Any]) -> None:
    """The default EMAIL_DISPATCHER: queue ``notice`` for this process's delivering thread.

    Never blocks. The thread is started on first use, and again in a process forked after
    that (a thread does not survive ``fork``).
    """
    global _background, _background_pid
    with _background_lock:
        if _background is None or _background_pid != os.getpid():
            _background, _background_pid = _Background(), os.getpid()
        background = _background
    background.put(notice)


def wait_for_pending(timeout: float = 5.0) -> bool:
    """Wait until every notice queued in this process has been delivered or has failed.

    Returns False if some are still waiting after ``timeout`` seconds.
    """
    background = _background
    if background is None or _background_pid != os.getpid():
        return True
    return background.wait(timeout)


# Best effort: a worker killed, or ended with os._exit, loses what is still queued.
atexit.register(wait_for_pending, 5.0)


def deliver_message(template: str, to: str, user: str | None, context: dict[str, Any]) -> None:
    if user is None:
        send(template, to, {"user": None, **context})
        return
    account = user_by_pk(user)
    if account is not None:
        send(template, to, {"user": account, **context})


def user_by_pk(pk: str):
    """The user a notice names, or None if it was deleted since the notice was made."""
    return get_user_model()._default_manager.filter(pk=pk).first()


def _collect_notices(**kwargs: Any) -> None:
    _request.notices = []


def _dispatch_collected(**kwargs: Any) -> None:
    """At request_finished: the response has been written, the request's work is done."""
    notices = getattr(_request, "notices", None)
    _request.notices = None
    if not notices:
        return
    # Django may have closed this thread's connections just before (CONN_MAX_AGE): any
    # that delivering opens again is closed too, so none stays open between requests.
    closed = {alias for alias in connections if connections[alias].connection is None}
    try:
        for notice in notices:
            dispatch(notice)
    finally:
        for alias in closed:
            connection = connections[alias]
            if connection.connection is not None and not connection.in_atomic_block:
                connection.close()


request_started.connect(_collect_notices, dispatch_uid="tessera.emails.collect")
request_finished.connect(_dispatch_collected, dispatch_uid="tessera.emails.dispatch")
