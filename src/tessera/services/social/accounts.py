"""Which account a provider's identity signs in to, and linking identities by hand.

- An identity already linked (issuer + subject) signs in to its account: nothing else
  names an account for good, neither an address nor a username.
- On first sight, an entry with ``link_verified_email`` links it to the one account
  whose address equals the one the provider asserts verified, and that Tessera verified
  too, never a staff or superuser account (see
  :func:`~tessera.services.external_identities.user_with_verified_email`). Without both
  verifications, whoever controls an address at the provider, or registered a victim's
  address here, would take the other's account over.
- Otherwise a new account without a password is opened (``signup``, on by default). It
  gets the provider's address only when the provider verified it and no account holds
  it: an address in use is never revealed, it is just not copied.
- A signed-in user links an identity explicitly; unlinking never removes the last way
  to log in.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound

from ...errors import (
    ServiceUnavailable,
    SocialIdentityTaken,
    SocialLastLoginMethod,
    SocialSignupClosed,
    UserInactive,
)
from ...models import (
    Authenticator,
    AuthenticatorType,
    EmailAddress,
    EventType,
    ExternalIdentity,
)
from .. import audit
from ..external_identities import linked_user, new_user, user_with_verified_email, verified_email
from ..verification import address_in_use
from .providers import Identity, Provider, configured_providers


def user_for(request, provider: Provider, identity: Identity):
    """The active account ``identity`` signs in to, linked or opened on first sight."""
    try:
        user = linked_user(identity.issuer, identity.subject)
        if user is None:
            user = _first_sight(request, provider, identity)
    except DatabaseError as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise ServiceUnavailable() from exc
    if not user.is_active:
        raise UserInactive()
    return user


def _verified_address(identity: Identity) -> str | None:
    claims = {"email": identity.email, "email_verified": identity.email_verified}
    return verified_email({}, claims)


def _first_sight(request, provider: Provider, identity: Identity):
    email = _verified_address(identity)
    try:
        with transaction.atomic():
            user = user_with_verified_email(email) if provider.link_verified_email else None
            created = user is None
            if created:
                user = _open_account(provider, identity, email)
            ExternalIdentity.objects.create(
                issuer=identity.issuer, subject=identity.subject, user=user, provider=provider.name
            )
    except IntegrityError:
        # A concurrent sign-in linked this identity first (or took the address).
        user = linked_user(identity.issuer, identity.subject)
        if user is None:
            raise SocialSignupClosed() from None
        return user
    if created:
        audit.record(EventType.REGISTERED, user=user, request=request)
    audit.record(
        EventType.SOCIAL_LINKED, user=user, request=request, detail={"provider": provider.name}
    )
    return user


def _open_account(provider: Provider, identity: Identity, email: str | None):
    if not provider.signup:
        raise SocialSignupClosed()
    if email is not None and address_in_use(email):
        email = None
    user = new_user(email)
    if user is None:
        # The user model is named by its address and there is none to use: the same
        # answer as a closed sign-up, whether or not the address has an account.
        raise SocialSignupClosed()
    if email is not None:
        EmailAddress.objects.create(
            user=user, email=getattr(user, user.get_email_field_name()), verified_at=timezone.now()
        )
    return user


def link(request, user, provider: Provider, identity: Identity) -> ExternalIdentity:
    """Link ``identity`` to the signed-in ``user``; linking it again is a no-op.

    An identity linked to another account stays where it is (409
    ``social_identity_taken``): moving it would hand that account's sign-in to this one.
    """
    existing = ExternalIdentity.objects.filter(
        issuer=identity.issuer, subject=identity.subject
    ).first()
    if existing is not None:
        if existing.user_id != user.pk:
            raise SocialIdentityTaken()
        return existing
    try:
        with transaction.atomic():
            linked = ExternalIdentity.objects.create(
                issuer=identity.issuer, subject=identity.subject, user=user, provider=provider.name
            )
    except IntegrityError:
        raise SocialIdentityTaken() from None
    audit.record(
        EventType.SOCIAL_LINKED, user=user, request=request, detail={"provider": provider.name}
    )
    return linked


def linked_identities(user):
    """The user's identities at sign-in providers, oldest first."""
    return ExternalIdentity.objects.filter(user=user).exclude(provider="").order_by("created_at")


def unlink(request, user, identity_id: str) -> None:
    """Unlink one of the user's identities, unless it is their last way to log in.

    Only identities of providers still configured count as another way: a resource
    server's link (no provider) or one of a provider since removed signs in nowhere. The
    user's row is locked first, so two unlinks at once cannot each see the other's
    identity and together remove both. An id that is not a number names nothing (404).
    """
    if not (identity_id.isascii() and identity_id.isdigit() and len(identity_id) < 19):
        raise NotFound()
    with transaction.atomic():
        model = get_user_model()
        locked = model._default_manager.select_for_update().get(pk=user.pk)
        identity = linked_identities(locked).filter(pk=identity_id).first()
        if identity is None:
            raise NotFound()
        others = (
            ExternalIdentity.objects.filter(user=locked, provider__in=configured_providers())
            .exclude(pk=identity.pk)
            .exists()
        )
        passkey = Authenticator.objects.filter(
            user=locked, type=AuthenticatorType.WEBAUTHN, passwordless=True
        ).exists()
        if not (locked.has_usable_password() or others or passkey):
            raise SocialLastLoginMethod()
        identity.delete()
    audit.record(
        EventType.SOCIAL_UNLINKED,
        user=user,
        request=request,
        detail={"provider": identity.provider},
    )
