"""An e-mail backend whose messages a test can read from another process.

Each message goes to its own file under ``MAILBOX_DIR/<recipient>/``, written whole
before it is renamed into place, so a reader never sees half a message.
"""

from __future__ import annotations

import email
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class MailboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        for message in email_messages:
            content = message.message().as_bytes()
            for recipient in message.recipients():
                folder = Path(settings.MAILBOX_DIR) / recipient
                folder.mkdir(parents=True, exist_ok=True)
                name = f"{time.time_ns()}-{os.getpid()}"
                partial = folder / f".{name}"
                partial.write_bytes(content)
                partial.rename(folder / f"{name}.eml")
        return len(email_messages)


def received(mailbox_dir: Path, recipient: str) -> list[Path]:
    """The files of the messages sent to ``recipient``, oldest first."""
    folder = mailbox_dir / recipient
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def read(path: Path) -> email.message.Message:
    return email.message_from_bytes(path.read_bytes())


def plain_text(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise ValueError("The message has no text/plain part.")
