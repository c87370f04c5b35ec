"""Social sign-in on a custom user model whose login field is the e-mail address.

Run in their own pytest invocation with ``--ds=tests.settings_email_user`` (``make test``
does), since AUTH_USER_MODEL cannot change inside one process.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tessera.models import ExternalIdentity

from .conftest import requires_email_user_model
from .social_support import back_from_provider, refusal, sign_in

pytestmark = [requires_email_user_model, pytest.mark.django_db]


def test_a_verified_address_names_the_new_account(api, issuer, social):
    social(issuer)
    sign_in(api, issuer)
    user = ExternalIdentity.objects.get().user
    assert user.email == "alice@example.com" and not user.has_usable_password()


def test_without_a_verified_address_no_account_can_be_opened(api, issuer, social):
    social(issuer)
    issuer.user = {"sub": "user-1", "email": "alice@example.com", "email_verified": False}
    assert refusal(back_from_provider(api, issuer)) == "social_signup_closed"
    assert not get_user_model().objects.exists()


def test_an_address_in_use_is_not_taken_over(api, issuer, social):
    owner = get_user_model().objects.create_user(
        email="alice@example.com", password="x-long-password-1", display_name="Alice"
    )
    social(issuer)
    assert refusal(back_from_provider(api, issuer)) == "social_signup_closed"
    assert not owner.external_identities.exists()
    assert get_user_model().objects.count() == 1
