"""Admin for sessions, second factors and the audit trail. It never shows a token, digest or secret:
there is nothing to copy."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .errors import ServiceUnavailable
from .models import (
    Authenticator,
    EventType,
    ExternalIdentity,
    RevokeReason,
    SecurityEvent,
    Session,
    SocialApp,
)
from .services import audit, lockout
from .services.mfa import encryption
from .services.sessions import revoke_sessions


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", _("Live")), ("revoked", _("Revoked")), ("expired", _("Expired"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "live":
            return queryset.live(now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True).filter(
                Q(expires_at__lte=now) | Q(idle_expires_at__lte=now)
            )
        return queryset


def _user_identity_lookups() -> list[str]:
    user_model = get_user_model()
    names = dict.fromkeys([user_model.USERNAME_FIELD, user_model.get_email_field_name()])
    lookups = []
    for name in names:
        try:
            user_model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        lookups.append(f"user__{name}")
    return lookups


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "kind",
        "device_name",
        "ip",
        "created_at",
        "last_used_at",
        "expiry_display",
        "revoked_at",
        "revoke_reason",
    ]
    list_filter = [StateFilter, "kind", "revoke_reason", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["device_name", "ip"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    date_hierarchy = "created_at"
    exclude = ["token_digest"]
    readonly_fields = [
        "id",
        "user",
        "kind",
        "device_name",
        "user_agent",
        "ip",
        "scopes",
        "created_at",
        "last_used_at",
        "idle_expires_at",
        "expires_at",
        "revoked_at",
        "revoke_reason",
        "amr",
        "auth_time",
        "mfa_enrolment_required",
    ]
    actions = ["revoke"]

    def get_search_fields(self, request) -> list[str]:
        # The user's login name and address, under whatever names the user model gives
        # them: a custom model may have no ``username`` (or no ``email``).
        return [*_user_identity_lookups(), *self.search_fields]

    @admin.display(description=_("expiry"))
    def expiry_display(self, session: Session):
        return session.expiry()

    def has_add_permission(self, request) -> bool:
        # Sessions come from logins; an admin-made row would have no token to use.
        return False

    @admin.action(description=_("Revoke the selected sessions"), permissions=["change"])
    def revoke(self, request, queryset):
        try:
            count = revoke_sessions(queryset.live(), RevokeReason.ADMIN)
        except ServiceUnavailable:
            # Rolled back, as over the API: the admin can simply try again.
            self.message_user(
                request,
                _("The session cache is unreachable: nothing was revoked. Try again."),
                messages.ERROR,
            )
            return
        audit.record(
            EventType.ADMIN_ACTION,
            user=request.user,
            request=request,
            detail={
                "action": "revoke_sessions",
                "admin": request.user.get_username(),
                "count": count,
            },
        )
        self.message_user(request, _("%d session(s) revoked.") % count, messages.SUCCESS)


@admin.register(Authenticator)
class AuthenticatorAdmin(admin.ModelAdmin):
    """Which second factors each user has: a list only, never a secret or key.

    Factors are removed by their owner or with ``manage.py tessera_reset_mfa``, which
    also takes care of recovery codes and sessions; the admin changes nothing here.
    """

    list_display = ["user", "type", "name", "created_at", "confirmed_at", "last_used_at"]
    list_display_links = None
    list_filter = ["type", ("confirmed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    fields = list_display

    def get_search_fields(self, request) -> list[str]:
        return _user_identity_lookups()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """Links of trusted issuers' users (``iss`` + ``sub``) to local users.

    Adding one lets that identity in under ``"user": "link"``; deleting one refuses it
    (or, under ``"create"``, makes it a new user on its next request).
    """

    list_display = ["subject", "issuer", "provider", "user", "created_at", "last_seen_at"]
    list_filter = ["provider", "issuer"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_seen_at"]

    def get_search_fields(self, request) -> list[str]:
        return ["subject", *_user_identity_lookups()]


class SocialAppForm(forms.ModelForm):
    """The secret is typed in and stored encrypted; it is never shown again. Left blank on
    a change, the stored one stays."""

    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), strip=True
    )

    class Meta:
        model = SocialApp
        fields = ["provider", "client_id"]

    def save(self, commit: bool = True):
        app = super().save(commit=False)
        secret = self.cleaned_data.get("client_secret")
        if secret:
            app.secret = encryption.encrypt(secret)
        if commit:
            app.save()
        return app


@admin.register(SocialApp)
class SocialAppAdmin(admin.ModelAdmin):
    """Client credentials of SOCIAL_PROVIDERS entries that give no client_id."""

    form = SocialAppForm
    list_display = ["provider", "client_id", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only. Searching for what someone typed at a login also
    finds the attempts on identifiers that name no account (kept only as a digest)."""

    list_display = ("created_at", "type", "outcome", "user", "ip", "session_id")
    list_filter = ("type", "outcome", ("created_at", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = [field.name for field in SecurityEvent._meta.fields]

    def get_search_fields(self, request) -> list[str]:
        return _user_identity_lookups()

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            digest = audit.identifier_digest(search_term.strip())
            results |= queryset.filter(identifier_digest=digest)
        return results, may_have_duplicates

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The trail is kept for AUDIT_RETENTION and deleted only by tessera_clearsessions:
        # an administrator must not be able to erase what they did.
        return False


@admin.action(description=_("Unlock the selected users (forget their failed logins)"))
def unlock_users(modeladmin, request, queryset):
    """Added to the user model's admin (see :func:`add_unlock_action`)."""
    try:
        for user in queryset:
            lockout.unlock(user.get_username())
    except ServiceUnavailable:
        modeladmin.message_user(
            request, _("The throttle store is unreachable. Try again."), messages.ERROR
        )
        return
    count = len(queryset)
    audit.record(
        EventType.ADMIN_ACTION,
        user=request.user,
        request=request,
        detail={"action": "unlock_users", "admin": request.user.get_username(), "count": count},
    )
    modeladmin.message_user(request, _("%d user(s) unlocked.") % count, messages.SUCCESS)


def add_unlock_action(site: admin.AdminSite | None = None) -> None:
    """Offer "Unlock" on the user model's admin, whichever ModelAdmin the project uses."""
    site = site or admin.site
    user_admin = site._registry.get(get_user_model())
    if user_admin is None:
        return
    actions = list(user_admin.actions or [])
    if unlock_users not in actions:
        user_admin.actions = [*actions, unlock_users]
