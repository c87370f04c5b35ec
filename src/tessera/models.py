"""Tessera's tables. Models stay plain: the rules live in :mod:`tessera.services`."""

from __future__ import annotations

import unicodedata
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SessionKind(models.TextChoices):
    TOKEN = "token", "Opaque token"
    JWT = "jwt", "JWT"
    BROWSER = "browser", "Browser session"
    PAT = "pat", "Personal access token"


class RevokeReason(models.TextChoices):
    LOGOUT = "logout", "Logged out"
    LOGOUT_ALL = "logout_all", "Logged out everywhere"
    USER = "user", "Revoked by the user"
    ADMIN = "admin", "Revoked by an administrator"
    EXPIRED = "expired", "Expired"
    LIMIT = "limit", "Displaced by a newer login"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET = "password_reset", "Password reset"
    DEACTIVATED = "deactivated", "Account deactivated"
    TOKEN_REUSED = "token_reused", "Refresh token reused"


class SessionQuerySet(models.QuerySet):
    def live(self, now=None):
        now = now or timezone.now()
        return self.filter(
            Q(revoked_at__isnull=True),
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            Q(idle_expires_at__isnull=True) | Q(idle_expires_at__gt=now),
        )


class Session(models.Model):
    """One login on one device, whatever the credential kind.

    Only a digest of the credential is kept (``token_digest``); the clear token exists
    in the login response and on the client, nowhere else.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tessera_sessions"
    )
    kind = models.CharField(max_length=16, choices=SessionKind.choices)
    # NULL, not "", for sessions without a bearer token: a unique index admits many NULLs.
    token_digest = models.CharField(  # noqa: DJ001
        max_length=128, unique=True, null=True, editable=False
    )
    device_name = models.CharField(max_length=100, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    scopes = models.JSONField(null=True, blank=True, help_text="None: every scope the user holds.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    idle_expires_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, choices=RevokeReason.choices, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["user", "revoked_at"], name="tessera_session_user_live"),
            models.Index(fields=["expires_at"], name="tessera_session_expires"),
            models.Index(fields=["idle_expires_at"], name="tessera_session_idle"),
        ]
        ordering = ["-last_used_at"]

    def __str__(self) -> str:
        label = self.device_name or self.get_kind_display()
        return f"{label} ({self.user_id})"

    def expiry(self):
        """When this session stops working if left alone: the earlier of both limits."""
        limits = [t for t in (self.idle_expires_at, self.expires_at) if t is not None]
        return min(limits) if limits else None

    def is_live(self, now=None) -> bool:
        now = now or timezone.now()
        expiry = self.expiry()
        return self.revoked_at is None and (expiry is None or expiry > now)


class ThrottleCounter(models.Model):
    """A fixed-window counter for the database throttle backend, updated under a row lock."""

    key = models.CharField(max_length=200, primary_key=True)
    window_ends_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["window_ends_at"], name="tessera_throttle_window")]

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class RefreshToken(models.Model):
    """One refresh token of a JWT session's rotation family.

    Only ``sha256(jti)`` is stored. A successor's ``jti`` is derived from its parent's
    with an HMAC, so inside the reuse grace window the same successor can be issued
    again without its clear value ever being stored.
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="refresh_tokens")
    jti_digest = models.CharField(max_length=64, unique=True, editable=False)
    # SET_NULL: cleaning up an expired ancestor must not take its live successor along.
    parent = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="successor"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tessera_refresh_expires")]

    def __str__(self) -> str:
        return f"refresh token {self.pk} of session {self.session_id}"


def identity_key(value: str) -> str:
    """The one form in which usernames and addresses are compared: NFKC, then case-folded.

    NFKC maps compatibility look-alikes onto the character they imitate (full-width
    ``ａ``, the Kelvin sign) the way Django's ``normalize_username`` does at
    ``create_user``; case folding then makes the comparison case-insensitive for every
    script, computed here in Python so that SQLite and PostgreSQL (whose ``LOWER`` follows
    the server's locale) agree.
    """
    return unicodedata.normalize("NFKC", value).casefold()


class EmailAddress(models.Model):
    """The address Tessera has verified, or is verifying, for a user: one row per user.

    The user counts as verified only while this row's address is the user's current one,
    so an address changed behind Tessera's back is unverified again. The unique index on
    ``key`` (the address's :func:`identity_key`) stops two concurrent sign-ups (or changes)
    claiming one address, or look-alike spellings of it, which the default user model
    would allow. ``save()`` derives the key; ``QuerySet.update()`` and ``bulk_create()``
    would bypass it, and Tessera uses neither on this table.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tessera_email"
    )
    email = models.CharField(max_length=254)
    # Unbounded: NFKC and case folding may lengthen an address, and a length error on
    # PostgreSQL would be a 5xx for an input that was valid.
    key = models.TextField(editable=False)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key"], name="tessera_email_address_key_unique")
        ]
        verbose_name_plural = "email addresses"

    def __str__(self) -> str:
        return f"{self.email} ({'verified' if self.verified_at else 'unverified'})"

    def save(self, *args, **kwargs) -> None:
        self.key = identity_key(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "key"}
        super().save(*args, **kwargs)


class EmailKeyPurpose(models.TextChoices):
    VERIFY = "verify", "Verify the account's address"
    CHANGE = "change", "Change the account's address"


class EmailVerificationKey(models.Model):
    """A one-time key e-mailed to an address; only ``sha256(key)`` is stored.

    Submitting it proves the user reads ``email``: it verifies the account's address
    (``verify``) or makes ``email`` the account's new address (``change``).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tessera_email_keys"
    )
    email = models.CharField(max_length=254)
    purpose = models.CharField(max_length=16, choices=EmailKeyPurpose.choices)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tessera_email_key_expires")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} key for {self.user_id}"


class CacheInvalidation(models.TextChoices):
    TOMBSTONE = "tombstone", "Mark the session revoked"
    EVICT = "evict", "Drop the cached copy"


class PendingCacheInvalidation(models.Model):
    """A session-cache write that failed, kept until it is replayed (the outbox).

    It is recorded in the transaction of the change that needed it, so once a revocation
    or a user change commits, either the cache holds its invalidation or this table does.
    Only the digest is kept: the rows outlive sessions that a user deletion removes.
    """

    token_digest = models.CharField(max_length=128, editable=False)
    action = models.CharField(max_length=16, choices=CacheInvalidation.choices)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending {self.action} since {self.created_at:%Y-%m-%d %H:%M:%S}"
