"""The audit trail's sources: receivers of Tessera's and Django's signals.

Each signal a service sends for an event worth keeping becomes one
:class:`~tessera.models.SecurityEvent` here, so no service writes the trail itself. Nothing
here runs per authenticated request: no signal is sent on the hot path but
``session_expired``, which is not recorded.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from . import signals
from .backends import REFUSED_ATTRIBUTE
from .conf import tessera_settings
from .models import EventOutcome, EventType, SessionKind
from .services import audit


@receiver(signals.session_created, dispatch_uid="tessera-audit-session-created")
def session_created(sender, session, request=None, **kwargs) -> None:
    if session.kind == SessionKind.PAT:
        audit.record(
            EventType.TOKEN_CREATED,
            user=session.user,
            session=session,
            request=request,
            detail={"name": session.device_name, "scopes": session.scopes},
        )
        return
    audit.record(
        EventType.LOGIN_SUCCEEDED,
        user=session.user,
        session=session,
        request=request,
        detail={
            "kind": session.kind,
            "amr": session.amr,
            "device_name": session.device_name,
            **({"provider": session.provider} if session.provider else {}),
        },
    )


@receiver(user_logged_in, dispatch_uid="tessera-audit-django-login")
def django_logged_in(sender, request, user, tessera: bool = False, **kwargs) -> None:
    """A login through ``django.contrib.auth.login`` (the admin, any Django view) that
    opens no Tessera session (DJANGO_LOGIN_SESSIONS off); one that does is recorded with
    its session, as every login is."""
    if tessera or tessera_settings.DJANGO_LOGIN_SESSIONS:
        return
    audit.record(EventType.LOGIN_SUCCEEDED, user=user, request=request, detail={"kind": "django"})


@receiver(user_login_failed, dispatch_uid="tessera-audit-login-failed")
def login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Every failed ``authenticate()``: Tessera's logins, the admin's, HTTP Basic. One the
    lockout refused unchecked is recorded as ``locked_out`` instead (below)."""
    if getattr(request, REFUSED_ATTRIBUTE, False):
        return
    identifier = credentials.get("username")
    if not isinstance(identifier, str):
        identifier = None
    audit.record(
        EventType.LOGIN_FAILED,
        user=audit.user_named(identifier),
        identifier=identifier,
        request=request,
        outcome=EventOutcome.FAILURE,
        detail={"reason": "invalid_credentials"},
    )


@receiver(signals.locked_out, dispatch_uid="tessera-audit-locked-out")
def locked_out(sender, user, identifier, scope, retry_after, request=None, **kwargs) -> None:
    """A login attempt refused unchecked by the lockout (Tessera's ``login_failed`` is
    not recorded: Django's ``user_login_failed`` above already records each failure)."""
    audit.record(
        EventType.LOCKED_OUT,
        user=user or audit.user_named(identifier),
        identifier=identifier,
        request=request,
        outcome=EventOutcome.FAILURE,
        detail={"scope": scope, "retry_after": retry_after},
    )


@receiver(signals.session_revoked, dispatch_uid="tessera-audit-session-revoked")
def session_revoked(sender, session, reason, **kwargs) -> None:
    audit.record(
        EventType.SESSION_REVOKED,
        user=session.user,
        session=session,
        detail={"reason": reason, "kind": session.kind, "device_name": session.device_name},
    )


@receiver(signals.refresh_token_reused, dispatch_uid="tessera-audit-refresh-reused")
def refresh_token_reused(sender, session, request=None, **kwargs) -> None:
    audit.record(
        EventType.REFRESH_TOKEN_REUSED,
        user=session.user,
        session=session,
        request=request,
        outcome=EventOutcome.FAILURE,
        detail={"kind": session.kind},
    )


@receiver(signals.login_reported, dispatch_uid="tessera-audit-login-reported")
def login_reported(sender, user, session, all_sessions, revoked, request=None, **kwargs):
    audit.record(
        EventType.LOGIN_REPORTED,
        user=user,
        session=session,
        request=request,
        detail={"all_sessions": all_sessions, "revoked": revoked},
    )


def _account_event(event_type: str):
    def handler(sender, user, request=None, **kwargs) -> None:
        audit.record(event_type, user=user, request=request)

    return handler


for _signal, _type in (
    (signals.user_registered, EventType.REGISTERED),
    (signals.password_changed, EventType.PASSWORD_CHANGED),
    (signals.password_reset, EventType.PASSWORD_RESET),
    (signals.mfa_recovery_codes_generated, EventType.RECOVERY_CODES_GENERATED),
):
    _signal.connect(_account_event(_type), weak=False, dispatch_uid=f"tessera-audit-{_type}")


@receiver(signals.email_verified, dispatch_uid="tessera-audit-email-verified")
def email_verified(sender, user, email, request=None, **kwargs) -> None:
    audit.record(EventType.EMAIL_VERIFIED, user=user, request=request, detail={"email": email})


@receiver(signals.email_changed, dispatch_uid="tessera-audit-email-changed")
def email_changed(sender, user, old_email, new_email, request=None, **kwargs) -> None:
    audit.record(
        EventType.EMAIL_CHANGED,
        user=user,
        request=request,
        detail={"old_email": old_email, "new_email": new_email},
    )


@receiver(signals.mfa_ticket_issued, dispatch_uid="tessera-audit-mfa-challenged")
def mfa_challenged(sender, user, request=None, **kwargs) -> None:
    audit.record(EventType.MFA_CHALLENGED, user=user, request=request)


@receiver(signals.mfa_failed, dispatch_uid="tessera-audit-mfa-failed")
def mfa_failed(sender, user, field, code, request=None, **kwargs) -> None:
    audit.record(
        EventType.MFA_FAILED,
        user=user,
        request=request,
        outcome=EventOutcome.FAILURE,
        detail={"method": field, "error": code},
    )


def _factor_event(event_type: str):
    def handler(sender, user, authenticator, request=None, **kwargs) -> None:
        audit.record(
            event_type,
            user=user,
            request=request,
            detail={"method": authenticator.type, "name": authenticator.name},
        )

    return handler


for _signal, _type in (
    (signals.mfa_factor_enrolled, EventType.MFA_ENROLMENT_STARTED),
    (signals.mfa_factor_confirmed, EventType.MFA_ADDED),
    (signals.mfa_factor_disabled, EventType.MFA_REMOVED),
    (signals.mfa_factor_used, EventType.MFA_USED),
):
    _signal.connect(_factor_event(_type), weak=False, dispatch_uid=f"tessera-audit-{_type}")


@receiver(signals.mfa_recovery_code_used, dispatch_uid="tessera-audit-recovery-code-used")
def recovery_code_used(sender, user, remaining, request=None, **kwargs) -> None:
    audit.record(
        EventType.RECOVERY_CODE_USED, user=user, request=request, detail={"remaining": remaining}
    )
