"""The new-device e-mail, and its "this wasn't me" link that ends the session it names.

A login that presents no known device of its account (see :mod:`tessera.services.devices`)
records a notice naming the new session; the e-mail is built and sent after the response,
like every other (:mod:`tessera.services.emails`), so the login does the same work
whether or not a notice is due. The very first login of an account sends none: its owner
has just been given it, and every device is new to it. Nor does a client that never
keeps its identifier (a script, a DRF ``Token`` client) mail its user at every login:
ACCOUNT_THROTTLE_RATES bounds the notices per user and per (user, IP, user agent),
until the user reports a login.

The link carries a token signed with :mod:`django.core.signing` (salted, under Tessera's
signing key, timestamped): the session id, its user and a random nonce. Nothing of it is
stored when it is sent. Its use inserts the SHA-256 digest of the nonce under a unique
index in the same transaction as the revocation, so the link works once: a second use,
or the loser of two concurrent ones, is refused and changes nothing, and a use whose
revocation fails (503) leaves the link usable.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import signals
from ..conf import tessera_settings
from ..errors import InvalidNoticeLink, NoticeLinkExpired, NoticeLinkUsed
from ..models import RevokeReason, Session, UsedNoticeLink
from . import buckets, devices, emails, throttling
from .buckets import Bucket, Rate
from .client import client_key
from .sessions import revoke_sessions, revoke_user_sessions
from .verification import account_rate, email_of

SALT = "tessera.services.device_notices"
PREFIX = "tessera:new-device-notice"
# A user reporting every session at once forgets the notices sent to this many places.
MAX_PLACES_FORGOTTEN = 100
NONCE_BYTES = 16


def notice_due(request, user) -> bool:
    """Whether the login of ``user`` from a device that is not one of theirs, finishing
    now, deserves a new-device e-mail.

    Called before the session opens: ``last_login`` is still the previous login's.
    """
    if not tessera_settings.NEW_DEVICE_NOTICE or not email_of(user):
        return False
    return not _first_login(user)


def _first_login(user) -> bool:
    # A user model without last_login (or a project that stopped Django updating it)
    # still has its sessions, which tessera_clearsessions deletes only long after; the
    # query runs only when last_login says "never".
    if getattr(user, "last_login", None) is not None:
        return False
    return not Session.objects.filter(user=user).exists()


def notify_new_device(request, session: Session) -> None:
    """Queue the e-mail about ``session``; it carries ids only, the link is minted later."""
    emails.notify("new_device", session=str(session.pk))
    signals.new_device_login.send(sender=Session, session=session, request=request)


def deliver_notice(session: str) -> None:
    """Send the new-device e-mail about ``session``, with a fresh link.

    Nothing is sent for a session that never committed, or whose user is gone, inactive
    or without an address. A session ended meanwhile is still reported: someone logged
    in, and its owner should know.
    """
    row = Session.objects.select_related("user").filter(pk=session).first()
    if row is None or not row.user.is_active or not email_of(row.user):
        return
    if not _within_notice_rates(row):
        return
    token = make_link_token(row)
    emails.send(
        "new_device",
        email_of(row.user),
        {
            "user": row.user,
            "device_name": as_given(row.device_name, DEVICE_NAME_SHOWN),
            "user_agent": as_given(row.user_agent, USER_AGENT_SHOWN),
            "ip": row.ip,
            "time": row.created_at,
            "url": emails.frontend_url("not_me", token=token),
            "expires_in": emails.duration_text(tessera_settings.NEW_DEVICE_NOTICE_LINK_TTL),
        },
    )


def _within_notice_rates(session: Session) -> bool:
    """Whether ``session``'s user may get one more new-device e-mail now.

    Decided here, after the response, so that the login does the same work either way.
    """
    # The client's own bucket first, all or nothing: a script logging in all day from
    # one place spends one of its user's notices, not all of them.
    wanted = [
        Bucket(key, Rate.parse(rate))
        for scope, key in (
            ("client", _client_key(session.user, session.ip, session.user_agent)),
            ("user", _user_key(session.user)),
        )
        if (rate := account_rate(f"new_device_notice_{scope}")) is not None
    ]
    return buckets.take(wanted) is None


def _forget_notices_sent(user, places: list[tuple[str | None, str]]) -> None:
    """Reported logins: the next new device of the account is announced, from the
    (IP, user agent) ``places`` the reported logins came from too."""
    buckets.clear([_user_key(user), *(_client_key(user, ip, agent) for ip, agent in places)])


def _sessions_of_the_device(session: Session) -> list[Session]:
    """``session``, and every live session its device opened since: presenting the
    identifier it was given, they sent no e-mail of their own."""
    if not session.device_key:
        return [session]
    same_device = Session.objects.live().filter(user=session.user, device_key=session.device_key)
    return [session, *same_device.exclude(pk=session.pk)]


def _recent_places(user) -> list[tuple[str | None, str]]:
    # Where the user's logins could have spent a notice the client rate still counts.
    rate = account_rate("new_device_notice_client")
    if rate is None:
        return []
    since = timezone.now() - timedelta(seconds=Rate.parse(rate).seconds)
    recent = Session.objects.filter(user=user, created_at__gte=since)
    return list(recent.values_list("ip", "user_agent").distinct()[:MAX_PLACES_FORGOTTEN])


def _user_key(user) -> str:
    return f"{PREFIX}:user:{throttling.digest(str(user.pk))}"


def _client_key(user, ip: str | None, agent: str) -> str:
    account = throttling.digest(str(user.pk))
    place = throttling.digest(f"{ip or ''}\n{agent}")
    return f"{PREFIX}:client:{account}:{place}"


# How much of what the device said about itself the e-mail shows.
DEVICE_NAME_SHOWN = 60
USER_AGENT_SHOWN = 120


def as_given(text: str, limit: int) -> str:
    """``text`` as the e-mail quotes it: one line, at most ``limit`` characters, in quotes.

    The device chose it (whoever logged in did): quoted and kept short and on one line,
    it cannot pass for a sentence of the genuine e-mail ("this was you, confirm at…").
    Names stored before the login serializers refused line breaks are made safe here too.
    """
    line = "".join(char if unicodedata.category(char)[0] not in "CZ" else " " for char in text)
    line = " ".join(line.split())
    if not line:
        return ""
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return f"“{line}”"


def make_link_token(session: Session) -> str:
    """A new link for ``session``: each e-mail's is its own, with a nonce of its own."""
    payload = {
        "s": str(session.pk),
        "u": str(session.user_id),
        "n": secrets.token_urlsafe(NONCE_BYTES),
    }
    return signing.dumps(payload, key=tessera_settings.signing_key, salt=SALT)


def read_link_token(token: str) -> dict[str, str]:
    """The link's session id, user id and nonce; expired links and forged ones refused."""
    try:
        payload = signing.loads(
            token,
            key=tessera_settings.signing_key,
            salt=SALT,
            max_age=tessera_settings.NEW_DEVICE_NOTICE_LINK_TTL,
            fallback_keys=_fallback_keys(),
        )
    except signing.SignatureExpired as exc:
        raise NoticeLinkExpired() from exc
    except signing.BadSignature as exc:
        raise InvalidNoticeLink() from exc
    if not (
        isinstance(payload, dict)
        and all(isinstance(payload.get(field), str) for field in ("s", "u", "n"))
    ):
        raise InvalidNoticeLink()
    return payload


def _fallback_keys() -> list[Any]:
    # As for reset links: SECRET_KEY's rotation keeps links working, a SIGNING_KEY has none.
    return [] if tessera_settings.SIGNING_KEY else list(settings.SECRET_KEY_FALLBACKS)


def report_login(request, token: str, *, all_sessions: bool) -> int:
    """Use a new-device link: end the session it names, and every other live session of
    its device, and forget that device; or end every session of its account and forget
    every device.

    Returns how many sessions were live until now (0 when the named one had ended
    already). The link must still be valid and unused; the use and the revocation commit
    together or not at all.
    """
    throttling.hit("not-me-ip", client_key(request), account_rate("not_me_ip"))
    payload = read_link_token(token)
    try:
        session_id = uuid.UUID(payload["s"])
    except ValueError as exc:
        raise InvalidNoticeLink() from exc
    session = Session.objects.select_related("user").filter(pk=session_id).first()
    if session is not None and str(session.user_id) != payload["u"]:
        # Signed by this server, so never expected: refuse rather than trust either id.
        raise InvalidNoticeLink()
    user = session.user if session is not None else emails.user_by_pk(payload["u"])
    if user is None:
        raise InvalidNoticeLink()
    digest = hashlib.sha256(payload["n"].encode("ascii", "replace")).hexdigest()
    with transaction.atomic():
        try:
            with transaction.atomic():
                UsedNoticeLink.objects.create(nonce_digest=digest, user=user, session_id=session_id)
        except IntegrityError as exc:
            raise NoticeLinkUsed() from exc
        # Whoever it was kept a known device: it would log in again unannounced, and
        # unhindered by the account's lockout.
        if all_sessions:
            revoked = revoke_user_sessions(user, RevokeReason.NOT_ME)
            devices.forget_all_devices(user)
            places = _recent_places(user)
        else:
            reported = _sessions_of_the_device(session) if session is not None else []
            revoked = revoke_sessions(reported, RevokeReason.NOT_ME)
            if session is not None:
                devices.forget_device(user, session.device_key)
            places = list({(s.ip, s.user_agent) for s in reported})
        _forget_notices_sent(user, places)
        signals.login_reported.send(
            sender=Session,
            user=user,
            session=session,
            all_sessions=all_sessions,
            revoked=revoked,
            request=request,
        )
    return revoked
