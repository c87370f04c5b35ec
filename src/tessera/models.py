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
    EXTERNAL = "external", "External issuer's token"


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
    MFA_RESET = "mfa_reset", "Second factors reset"
    MFA_ENROLLED = "mfa_enrolled", "Ended when a second factor was set up"
    NOT_ME = "not_me", "Reported by the user from a new-device e-mail"


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
    # How the user proved who they are (RFC 8176 values: "pwd", "otp", "hwk", "fed"…) and
    # when they last did: step-up checks read these.
    amr = models.JSONField(default=list, blank=True)
    auth_time = models.DateTimeField(null=True, blank=True)
    # MFA_REQUIRED covers the user and they have no second factor yet: the session may
    # only enrol one (and read me/, log out) until they do.
    mfa_enrolment_required = models.BooleanField(default=False)
    # The SOCIAL_PROVIDERS name the user signed in through; "" for other logins.
    provider = models.CharField(max_length=64, blank=True)
    # The known-device key this login was issued under (tessera.services.devices): the
    # id of the device's first session. Not a credential: the client holds it only
    # inside an identifier signed by the server.
    device_key = models.CharField(max_length=64, blank=True, editable=False)

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


class RateBucket(models.Model):
    """One GCRA bucket of the database throttle backend: an attempt throttle or a
    failure lockout, read and written under a row lock (tessera.services.buckets).

    Times are seconds since the epoch: ``tat`` is the bucket's theoretical arrival time,
    ``locked_until`` the end of its back-off, ``strikes`` how many back-offs it has had.
    Past ``expires_at`` the row means nothing and may be deleted.
    """

    key = models.CharField(max_length=200, primary_key=True)
    tat = models.FloatField(default=0)
    locked_until = models.FloatField(default=0)
    strikes = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tessera_bucket_expiry")]

    def __str__(self) -> str:
        return self.key


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


# Second factors


class AuthenticatorType(models.TextChoices):
    TOTP = "totp", "Authenticator app (TOTP)"
    RECOVERY_CODES = "recovery_codes", "Recovery codes"
    WEBAUTHN = "webauthn", "Security key or passkey"


class Authenticator(models.Model):
    """One second factor of a user: a TOTP secret, a set of recovery codes, or a passkey.

    Secrets never appear in clear: a TOTP secret is encrypted (``secret``), recovery codes
    are digests (:class:`RecoveryCode`), and a passkey holds only its public key. A TOTP
    factor counts once ``confirmed_at`` is set; until then it is an enrolment in progress.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tessera_authenticators"
    )
    type = models.CharField(max_length=16, choices=AuthenticatorType.choices)
    name = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # TOTP: the secret, encrypted with MFA_ENCRYPTION_KEYS; the last time step accepted,
    # so one code cannot be used twice.
    secret = models.TextField(blank=True, editable=False)
    last_used_step = models.BigIntegerField(null=True, blank=True, editable=False)
    # WebAuthn: the credential id (base64url, looked up by passwordless login), its
    # COSE public key, the signature counter, transports, and whether it is a
    # discoverable credential that may log in without a password.
    credential_id = models.CharField(  # noqa: DJ001 - NULL for other types: unique admits many
        max_length=1400, unique=True, null=True, blank=True, editable=False
    )
    public_key = models.BinaryField(null=True, blank=True, editable=False)
    sign_count = models.PositiveBigIntegerField(default=0, editable=False)
    transports = models.JSONField(default=list, blank=True, editable=False)
    passwordless = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # One authenticator app and one set of recovery codes per user.
            models.UniqueConstraint(
                fields=["user", "type"],
                condition=Q(type__in=["totp", "recovery_codes"]),
                name="tessera_authenticator_one_per_type",
            )
        ]
        indexes = [models.Index(fields=["user", "type"], name="tessera_authenticator_user")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} of {self.user_id}"


class RecoveryCode(models.Model):
    """One single-use recovery code; only its keyed digest (HMAC of SIGNING_KEY) is kept."""

    authenticator = models.ForeignKey(
        Authenticator, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.authenticator_id}"


class LoginTicket(models.Model):
    """A login that passed its first factor and waits for the second; single use.

    Only ``sha256(ticket)`` is stored. It carries the login's intent (credential kind,
    device name) and is bound to the client that started it (user agent, IP), so it
    finishes exactly the login that was started and nothing else.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tessera_login_tickets"
    )
    credential = models.CharField(max_length=16)
    device_name = models.CharField(max_length=100, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    amr = models.JSONField(default=list)
    provider = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    failures = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tessera_login_ticket_expires")]

    def __str__(self) -> str:
        return f"login ticket of {self.user_id}"


class WebAuthnChallengePurpose(models.TextChoices):
    REGISTER = "register", "Register a passkey"
    AUTHENTICATE = "authenticate", "Second factor of a login"
    PASSWORDLESS = "passwordless", "Log in with a passkey"
    REAUTHENTICATE = "reauthenticate", "Confirm it is still the user"


class WebAuthnChallenge(models.Model):
    """A WebAuthn challenge handed to a client; single use, expiring, bound to its purpose.

    Bound to the user (registration, re-authentication) or to the login ticket (second
    factor); a passwordless challenge is bound to neither, and to the credential it meets.
    Only ``sha256(challenge)`` is stored.
    """

    digest = models.CharField(max_length=64, unique=True, editable=False)
    purpose = models.CharField(max_length=16, choices=WebAuthnChallengePurpose.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    ticket = models.ForeignKey(
        LoginTicket, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tessera_webauthn_expires")]

    def __str__(self) -> str:
        return f"{self.purpose} challenge"


class ExternalIdentity(models.Model):
    """A user of an external issuer (``iss``, ``sub``) linked to a local user.

    ``provider`` names the SOCIAL_PROVIDERS entry that linked it ("" for an identity seen
    only through TRUSTED_ISSUERS). ``last_seen_at`` is written at most once per
    ``MIN_REFRESH_INTERVAL``.
    """

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    provider = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="tessera_external_identity_unique"
            )
        ]
        verbose_name_plural = "external identities"

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class SocialApp(models.Model):
    """The client credentials of one SOCIAL_PROVIDERS entry, kept here instead of in the
    settings. The secret is encrypted with MFA_ENCRYPTION_KEYS (it must be sent to the
    provider, so it cannot be a digest)."""

    provider = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=255)
    secret = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.provider} app"


class SocialLogin(models.Model):
    """One redirect sign-in with a provider, from ``authorize/`` to ``exchange/``.

    Only digests are kept: of the ``state`` (the PKCE verifier and the nonce are derived
    from it with SIGNING_KEY, so they are stored nowhere), of the value bound to the
    browser in a cookie, and of the one-time code handed to the front end. Each step is
    used once: ``state_used_at`` and ``code_used_at`` are set by one conditional UPDATE.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=64)
    mode = models.CharField(max_length=16)
    device_name = models.CharField(max_length=100, blank=True)
    state_digest = models.CharField(max_length=64, unique=True, editable=False)
    browser_digest = models.CharField(max_length=64, editable=False)
    # mode "link": the signed-in user the identity is linked to.
    link_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    state_used_at = models.DateTimeField(null=True, blank=True)
    # Set by the callback of a login: who signed in, how, and the code's digest.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    amr = models.JSONField(default=list, blank=True)
    code_digest = models.CharField(  # noqa: DJ001 - NULL until the callback: unique admits many
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tessera_social_login_expires")]

    def __str__(self) -> str:
        return f"{self.provider} sign-in {self.pk}"


class EventType(models.TextChoices):
    """What a :class:`SecurityEvent` records; docs/audit.md describes each."""

    LOGIN_SUCCEEDED = "login_succeeded", "Logged in"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOCKED_OUT = "locked_out", "Locked out"
    MFA_CHALLENGED = "mfa_challenged", "Asked for a second factor"
    MFA_FAILED = "mfa_failed", "Second factor refused"
    MFA_USED = "mfa_used", "Second factor used"
    MFA_ENROLMENT_STARTED = "mfa_enrolment_started", "Second factor set-up started"
    MFA_ADDED = "mfa_added", "Second factor added"
    MFA_REMOVED = "mfa_removed", "Second factor removed"
    RECOVERY_CODES_GENERATED = "recovery_codes_generated", "Recovery codes generated"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    SESSION_REVOKED = "session_revoked", "Session ended"
    REFRESH_TOKEN_REUSED = "refresh_token_reused", "Refresh token reused"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET = "password_reset", "Password reset"
    EMAIL_CHANGED = "email_changed", "E-mail address changed"
    EMAIL_VERIFIED = "email_verified", "E-mail address verified"
    REGISTERED = "registered", "Account created"
    TOKEN_CREATED = "token_created", "Personal access token created"
    SOCIAL_LINKED = "social_linked", "Social account linked"
    SOCIAL_UNLINKED = "social_unlinked", "Social account unlinked"
    ADMIN_ACTION = "admin_action", "Administrator action"
    LOGIN_REPORTED = "login_reported", "Login reported as not the user's"


class EventOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class SecurityEvent(models.Model):
    """One security-relevant event, for the user's own history and the admin.

    Never holds a password, token, code or key: ``detail`` takes only the keys
    :mod:`tessera.services.audit` allows for its type. An attempt on an identifier that
    names no account is kept as ``identifier_digest`` (a keyed hash), not as typed.
    ``session_id`` is not a foreign key: events outlive the sessions they mention.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="security_events",
    )
    identifier_digest = models.CharField(max_length=64, blank=True, db_index=True)
    type = models.CharField(max_length=32, choices=EventType.choices)
    outcome = models.CharField(max_length=8, choices=EventOutcome.choices)
    session_id = models.UUIDField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="tessera_event_user_time")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} ({self.outcome}) at {self.created_at:%Y-%m-%d %H:%M:%S}"


class UsedNoticeLink(models.Model):
    """A new-device e-mail's link that has been used: what makes the link single use.

    The link itself is signed and stored nowhere; only the SHA-256 digest of its nonce is
    kept, under a unique index, so of concurrent uses exactly one inserts its row. A row
    is kept while a link of its age could still be valid (NEW_DEVICE_NOTICE_LINK_TTL).
    """

    nonce_digest = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Not a foreign key: the record of a use outlives the session it ended.
    session_id = models.UUIDField()
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"new-device link used at {self.used_at:%Y-%m-%d %H:%M:%S}"


class ForgottenDevice(models.Model):
    """Known-device identifiers a user's account no longer honours.

    A row with a ``device_key`` forgets that one device ("this wasn't me" about its
    session); a row with ``device_key`` "" forgets every identifier issued to the user
    up to ``forgotten_at`` (a password change, or "this wasn't me" for every session)
    but those of ``kept_key``, the device that changed the password. One row per (user,
    key): forgetting again moves ``forgotten_at``, and a later "every device" subsumes
    the earlier one. A row is kept while an identifier it forgets could still be valid
    (DEVICE_LIFETIME).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device_key = models.CharField(max_length=64, blank=True)
    kept_key = models.CharField(max_length=64, blank=True)
    forgotten_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "device_key"], name="tessera_forgotten_device"),
            # Only forgetting every device spares one.
            models.CheckConstraint(
                condition=Q(device_key="") | Q(kept_key=""), name="tessera_forgotten_kept_all"
            ),
        ]

    def __str__(self) -> str:
        what = "every device" if not self.device_key else "one device"
        return f"{what} forgotten at {self.forgotten_at:%Y-%m-%d %H:%M:%S}"
