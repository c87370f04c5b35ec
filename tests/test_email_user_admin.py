"""Admin checks on a user model with no ``username`` and no ``PermissionsMixin``.

AUTH_USER_MODEL cannot change inside one process: these tests run in their own pytest
invocation with ``--ds=tests.settings_email_user`` (``make test`` does it).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, PermissionsMixin
from django.core.exceptions import FieldDoesNotExist
from django.urls import reverse
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from tessera.models import Session, SessionKind
from tessera.permissions import IsAdmin

from .conftest import PASSWORD, requires_email_user_model

pytestmark = [
    requires_email_user_model,
    pytest.mark.django_db,
]


class AdminOnlyView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request):
        return Response({})


def admin_only(user) -> int:
    request = APIRequestFactory().get("/admin-only/")
    force_authenticate(request, user=user)
    return AdminOnlyView.as_view()(request).status_code


def create_user(email: str, **extra):
    return get_user_model().objects.create_user(email, PASSWORD, display_name="A", **extra)


def test_the_model_has_no_username_and_no_permissions_mixin():
    user_model = get_user_model()
    assert not issubclass(user_model, PermissionsMixin)
    for name in ("username", "groups"):
        with pytest.raises(FieldDoesNotExist):
            user_model._meta.get_field(name)


def test_is_admin_lets_a_superuser_in():
    root = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    assert admin_only(root) == 200


def test_is_admin_refuses_everyone_else_without_a_group_query(django_assert_num_queries):
    user = create_user("abc@example.com", is_staff=True)
    # An "Admin" group exists, but this user model cannot belong to any group.
    Group.objects.create(name="Admin")
    with django_assert_num_queries(0):
        assert admin_only(user) == 403


def test_is_admin_refuses_a_user_without_a_superuser_flag():
    # A user model may have neither PermissionsMixin nor an is_superuser of its own.
    user = SimpleNamespace(pk=1, is_authenticated=True, is_active=True)
    assert admin_only(user) == 403


def test_admin_search_finds_sessions_by_the_login_address(client):
    root = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    owner = create_user("owner@example.com")
    Session.objects.create(user=owner, kind=SessionKind.TOKEN, device_name="owner's phone")
    Session.objects.create(user=root, kind=SessionKind.TOKEN, device_name="root's laptop")
    client.force_login(root)
    response = client.get(reverse("admin:tessera_session_changelist"), {"q": "owner@"})
    assert response.status_code == 200
    assert b"owner&#x27;s phone" in response.content
    assert b"root&#x27;s laptop" not in response.content
