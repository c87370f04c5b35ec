"""Which account a provider's identity reaches: never an existing one it has not proven
(account takeover), never revealing that an address has an account."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tessera.models import EmailAddress, ExternalIdentity
from tessera.services import external_identities

from .conftest import create_user
from .social_support import (
    back_from_provider,
    exchange,
    one_time_code,
    refusal,
    sign_in,
)

pytestmark = pytest.mark.django_db


def _victim(*, verified_here: bool, **fields):
    user = create_user("alice", email="alice@example.com", **fields)
    if verified_here:
        EmailAddress.objects.create(user=user, email=user.email, verified_at=timezone.now())
    return user


def _signed_in_username(api, fake) -> str:
    return sign_in(api, fake)["user"]["username"]


def test_unverified_provider_address_never_reaches_the_account(api, issuer, social):
    victim = _victim(verified_here=True)
    social(issuer, link_verified_email=True)
    issuer.user = {"sub": "attacker", "email": "alice@example.com", "email_verified": False}
    assert _signed_in_username(api, issuer) != "alice"
    assert not victim.external_identities.exists()
    newcomer = ExternalIdentity.objects.get().user
    assert newcomer.email == ""


def test_verified_address_links_only_when_the_entry_allows(api, issuer, social):
    victim = _victim(verified_here=True)
    social(issuer)
    assert _signed_in_username(api, issuer) != "alice"
    assert not victim.external_identities.exists()


def test_verified_address_links_when_allowed(api, issuer, social):
    victim = _victim(verified_here=True)
    social(issuer, link_verified_email=True)
    assert _signed_in_username(api, issuer) == "alice"
    assert victim.external_identities.get().provider == "acme"


def test_address_not_verified_here_is_not_linked(api, issuer, social):
    """Someone who registered the victim's address here without proving it must not be
    joined by the victim's provider identity, nor the other way round."""
    victim = _victim(verified_here=False)
    social(issuer, link_verified_email=True)
    assert _signed_in_username(api, issuer) != "alice"
    assert not victim.external_identities.exists()


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_staff_accounts_are_never_linked_by_address(api, issuer, social, flag):
    victim = _victim(verified_here=True, **{flag: True})
    social(issuer, link_verified_email=True)
    assert _signed_in_username(api, issuer) != "alice"
    assert not victim.external_identities.exists()


def test_address_in_use_is_not_copied_nor_revealed(api, issuer, social):
    _victim(verified_here=False)
    social(issuer)
    with_account = back_from_provider(api, issuer)
    issuer.user = {"sub": "user-2", "email": "fresh@example.com", "email_verified": True}
    without_account = back_from_provider(api, issuer)
    # The same answer whether or not the address has an account.
    assert one_time_code(with_account) and one_time_code(without_account)
    first, second = ExternalIdentity.objects.order_by("pk")
    assert first.user.email == "" and second.user.email == "fresh@example.com"
    users_with_address = get_user_model().objects.filter(email__iexact="alice@example.com")
    assert users_with_address.count() == 1


def test_copied_address_counts_as_verified(api, issuer, social):
    social(issuer)
    sign_in(api, issuer)
    record = EmailAddress.objects.get()
    assert record.email == "alice@example.com" and record.verified_at is not None


def test_closed_sign_up_refuses_unknown_identities(api, issuer, social):
    _victim(verified_here=True)
    social(issuer, signup=False)
    assert refusal(back_from_provider(api, issuer)) == "social_signup_closed"
    issuer.user = {"sub": "user-2", "email": "fresh@example.com", "email_verified": True}
    assert refusal(back_from_provider(api, issuer)) == "social_signup_closed"
    assert not ExternalIdentity.objects.exists()


def test_closed_sign_up_still_lets_linked_identities_in(api, issuer, social):
    user = create_user("alice")
    ExternalIdentity.objects.create(issuer=issuer.url, subject="user-1", user=user)
    social(issuer, signup=False)
    assert _signed_in_username(api, issuer) == "alice"


def test_inactive_account_is_refused(api, issuer, social):
    user = create_user("alice", is_active=False)
    ExternalIdentity.objects.create(issuer=issuer.url, subject="user-1", user=user)
    social(issuer)
    assert refusal(back_from_provider(api, issuer)) == "user_inactive"


def test_account_deactivated_after_the_callback_is_refused_at_exchange(api, issuer, social):
    social(issuer)
    code = one_time_code(back_from_provider(api, issuer))
    ExternalIdentity.objects.get().user.__class__.objects.update(is_active=False)
    response = exchange(api, code)
    assert response.status_code == 401 and response.json()["code"] == "user_inactive"


def _name_derived_from(issuer: str, subject: str) -> str:
    """The name a deterministic scheme would give the identity: computable by anyone."""
    return "ext-" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:24]


def test_a_name_computed_from_a_public_identity_blocks_no_sign_up(api, issuer, social):
    social(issuer, name="gh", kind="github")
    # GitHub's ids are public and the issuer is the origin of its sign-in page.
    squatter = create_user(_name_derived_from(issuer.url, "4242"), email="squat@example.com")
    body = sign_in(api, issuer, name="gh")
    user = ExternalIdentity.objects.get().user
    assert user != squatter and body["user"]["username"] == user.username
    assert re.fullmatch(r"ext-[0-9a-f]{24}", user.username)


def test_each_new_account_gets_its_own_random_name(api, issuer, social):
    social(issuer)
    first = _signed_in_username(api, issuer)
    issuer.user = {"sub": "user-2"}
    second = _signed_in_username(api, issuer)
    assert first != second
    assert _name_derived_from(issuer.url, "user-1") not in (first, second)


def test_a_drawn_name_already_taken_is_drawn_again(api, issuer, social, monkeypatch):
    social(issuer)
    create_user("ext-taken")
    drawn = iter(["ext-taken", "ext-free"])
    monkeypatch.setattr(external_identities, "random_username", lambda: next(drawn))
    assert _signed_in_username(api, issuer) == "ext-free"
    assert ExternalIdentity.objects.get().user.username == "ext-free"


def test_names_taken_at_every_draw_open_no_account(api, issuer, social, monkeypatch):
    social(issuer)
    create_user("ext-taken")
    monkeypatch.setattr(external_identities, "random_username", lambda: "ext-taken")
    assert refusal(back_from_provider(api, issuer)) == "social_signup_closed"
    assert not ExternalIdentity.objects.exists()
    assert get_user_model().objects.count() == 1
