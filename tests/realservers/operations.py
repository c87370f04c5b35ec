"""What the control process (:mod:`tests.realservers.control`) can be asked to do.

Each function is one change made outside any HTTP request, through the project's own
models and commands, as a task worker, an operator's shell or cron would make it.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone

from tessera import session_cache
from tessera.conf import tessera_settings
from tessera.models import Session


def create_user(username: str, password: str, email: str, superuser: bool = False) -> int:
    users = get_user_model().objects
    create = users.create_superuser if superuser else users.create_user
    return create(username, email, password).pk


def set_active(username: str, active: bool) -> None:
    """``is_active`` changed and saved, as the admin's form or a script does it."""
    user = get_user_model().objects.get(username=username)
    user.is_active = active
    user.save()


def delete_user(username: str) -> None:
    get_user_model().objects.get(username=username).delete()


def add_role(username: str, role: str) -> None:
    group, _ = Group.objects.get_or_create(name=role)
    get_user_model().objects.get(username=username).groups.add(group)


def remove_role(username: str, role: str) -> None:
    group = Group.objects.get(name=role)
    get_user_model().objects.get(username=username).groups.remove(group)


def end_long_ago(session_id: str, days: int) -> None:
    """Make a session one that expired ``days`` ago, as if that much time had passed.

    Its cache entry goes, as its own expiry would have taken it: an entry never
    outlives the session it holds.
    """
    ended = timezone.now() - timedelta(days=days)
    session = Session.objects.get(pk=session_id)
    Session.objects.filter(pk=session.pk).update(
        created_at=ended - timedelta(hours=1),
        last_used_at=ended,
        idle_expires_at=ended,
        expires_at=ended,
    )
    caches[tessera_settings.CACHE_ALIAS].delete(session_cache.KEY_PREFIX + session.token_digest)


def clearsessions() -> str:
    """Run ``tessera_clearsessions``; what it wrote to stdout and stderr."""
    output = StringIO()
    call_command("tessera_clearsessions", stdout=output, stderr=output)
    return output.getvalue()


def session_state(session_id: str) -> str:
    """``live``, ``revoked`` or ``gone``: what the database says of a session."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        return "gone"
    return "revoked" if session.revoked_at is not None else "live"


OPERATIONS = {
    function.__name__: function
    for function in (
        create_user,
        set_active,
        delete_user,
        add_role,
        remove_role,
        end_long_ago,
        clearsessions,
        session_state,
    )
}
