"""Keep sessions in step with changes made to users anywhere in the project.

These run inside ``user.save()`` and ``user.delete()``, called from the admin, management
commands and task workers as well as from Tessera's views: a cache outage must not make
them raise. A cache write that fails is recorded in the outbox instead (see
:mod:`tessera.session_cache`), in one transaction with the sessions it concerns.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from . import session_cache
from .models import RevokeReason
from .services import django_logins, passwords
from .services import sessions as session_service
from .services.verification import cancel_pending_keys


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="tessera-user-saved")
def user_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    """Deactivation revokes every session; any other change refreshes cached user data.

    Saving only ``last_login`` (Django does it on every login) changes nothing a session
    lookup needs, so it is skipped.
    """
    if created or (update_fields is not None and set(update_fields) == {"last_login"}):
        return
    # post_save runs after the user row is written, outside any transaction of Django's:
    # this one keeps each revocation together with its outbox row.
    with session_cache.failures_recorded(), transaction.atomic():
        if not instance.is_active:
            session_service.revoke_user_sessions(instance, RevokeReason.DEACTIVATED)
            cancel_pending_keys(instance)
        else:
            session_service.forget_cached_user(instance)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="tessera-password-saved")
def password_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    """A password set anywhere (the admin's forms, ``changepassword``, ``set_password()``
    then ``save()`` in code) ends the user's sessions as Tessera's own change does.

    Django keeps the new raw password in ``_password`` from ``set_password()`` until the
    save is done (a hasher upgrade at login clears it first: it is no change), so this
    costs nothing on other saves. Tessera's own endpoints end the sessions themselves.
    The browser changing its own password through Django keeps its login, like the
    caller of ``password/change/``.
    """
    if created or getattr(instance, "_password", None) is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    if instance.__dict__.pop(passwords.SESSIONS_HANDLED, False):
        return
    with session_cache.failures_recorded(), transaction.atomic():
        passwords.end_sessions_for_new_password(
            instance,
            RevokeReason.PASSWORD_CHANGED,
            keep=django_logins.own_login_session(instance),
        )


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="tessera-user-deleted")
def user_deleted(sender, instance, **kwargs) -> None:
    """Deleting a user deletes its sessions by cascade; their cached copies must go too.

    Django sends pre_delete inside the deletion's transaction, so an outbox row recorded
    here commits or rolls back with the deletion.
    """
    with session_cache.failures_recorded():
        session_service.forget_deleted_user(instance)


@receiver(user_logged_in, dispatch_uid="tessera-django-login")
def django_logged_in(sender, request, user, tessera: bool = False, **kwargs) -> None:
    """A login through ``django.contrib.auth.login`` becomes a Tessera browser session.

    Tessera's own logins send ``tessera=True``: they have their session already.
    """
    if tessera or request is None or not django_logins.enabled():
        return
    django_logins.record_login(request, user)


@receiver(user_logged_out, dispatch_uid="tessera-django-logout")
def django_logged_out(sender, request, user=None, tessera: bool = False, **kwargs) -> None:
    if tessera or request is None or not django_logins.enabled():
        return
    django_logins.end_login(request)
