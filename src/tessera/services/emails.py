"""The e-mails of the account flows and the front-end links they carry.

Each e-mail is three Django templates a project can override by putting files of the
same name earlier on its template path: ``tessera/email/<name>_subject.txt``,
``<name>.txt`` and ``<name>.html``. Links come from ``TESSERA['FRONTEND_URLS']``, never
from the request's ``Host`` header, which the client controls.

Sending goes through Django's e-mail backend. A failure is logged and swallowed: the
HTTP answer must not depend on whether, or to whom, an e-mail went out.
"""

from __future__ import annotations

import logging
import string
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from ..conf import tessera_settings

logger = logging.getLogger("tessera")

# The placeholders each front-end link must contain, and the only ones it may.
LINK_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "password_reset": frozenset({"uid", "token"}),
    "verify_email": frozenset({"key"}),
    "login": frozenset(),
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


def send(name: str, to: str, context: dict[str, Any]) -> bool:
    """Render and send one e-mail; False (and a log entry) when the backend failed."""
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
    except Exception:
        user = context.get("user")
        logger.exception("Sending the %r e-mail failed (user %s).", name, getattr(user, "pk", None))
        return False
    return True
