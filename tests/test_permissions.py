"""Roles, scopes and ownership: the permission classes and the test app's endpoints using them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from tessera.errors import ServiceUnavailable
from tessera.models import Session
from tessera.permissions import (
    HasAllRoles,
    HasAnyRole,
    HasRole,
    HasScope,
    IsAdmin,
    IsOwner,
    TokenHasReadWriteScope,
    owner_pk,
    roles_of,
    scopes_of,
)
from tessera.services.scopes import granted_scopes, held_scopes

from .authz_support import ALL_SCOPES, pat_for, token_for
from .conftest import auth_header, create_user
from .testapp.models import Post

pytestmark = pytest.mark.django_db
factory = APIRequestFactory()


def call(view_permissions, user, *, method: str = "get", session=None):
    """Run a bare view with ``view_permissions`` as ``user``; returns the status code."""

    class View(APIView):
        permission_classes = view_permissions
        authentication_classes: list = []

        def initial(self, request, *args, **kwargs):
            request.user, request.auth = user, session
            super().initial(request, *args, **kwargs)

        def get(self, request):
            return Response({})

        post = get

    return View.as_view()(getattr(factory, method)("/")).status_code


# --- Roles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,allowed",
    [
        ("/api/admin-content/", {"admin", "root"}),
        ("/api/manager-content/", {"manager"}),
        ("/api/hr-content/", {"hr"}),
        ("/api/protected/", {"admin", "root", "manager", "hr", "user", "staff"}),
    ],
)
def test_role_endpoints_with_a_token_per_group(api, seeded, path, allowed):
    for username, user in seeded.items():
        response = api.get(path, **auth_header(token_for(user)))
        assert response.status_code == (200 if username in allowed else 403), username
        if username not in allowed:
            assert response.json()["code"] in ("admin_required", "role_required")
    response = api.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("path", ["/api/manager-content/", "/api/admin-content/"])
def test_removing_a_user_from_a_group_denies_the_next_request_with_the_same_token(
    api, seeded, path
):
    username = "manager" if "manager" in path else "admin"
    user = seeded[username]
    token = token_for(user)
    # Twice: the second request is served from the session cache, user instance included.
    assert api.get(path, **auth_header(token)).status_code == 200
    assert api.get(path, **auth_header(token)).status_code == 200
    user.groups.clear()
    assert api.get(path, **auth_header(token)).status_code == 403
    user.groups.add(Group.objects.get(name=username.capitalize()))
    assert api.get(path, **auth_header(token)).status_code == 200


def test_model_permissions_from_groups_are_not_cached_between_requests(api, seeded):
    manager = seeded["manager"]
    token = pat_for(manager, ALL_SCOPES)
    body = {"title": "t", "body": "b"}
    assert api.post("/api/posts/", body, format="json", **auth_header(token)).status_code == 201
    manager.groups.clear()
    assert api.post("/api/posts/", body, format="json", **auth_header(token)).status_code == 403
    assert Post.objects.count() == 1


def test_role_lookups_cost_one_query_per_request_however_many_checks(
    seeded, django_assert_num_queries
):
    manager = seeded["manager"]
    checks = [
        HasRole("Manager"),
        HasAnyRole("HR", "Manager"),
        HasRole("Manager") | IsAdmin,
        HasAllRoles("Manager"),
    ]
    with django_assert_num_queries(1):
        assert call(checks, manager) == 200


def test_superuser_is_admin_without_a_query(seeded, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert call([IsAdmin], seeded["root"]) == 200


def test_roles_are_remembered_on_the_request_not_on_the_user(seeded):
    request = factory.get("/")
    request.user = seeded["manager"]
    assert roles_of(request) == {"Manager"}
    assert "_tessera_authorization" in vars(request)
    assert not any("tessera" in name for name in vars(request.user))


def test_staff_is_not_admin_and_superuser_has_no_other_roles(seeded):
    assert call([IsAdmin], seeded["staff"]) == 403
    assert call([HasRole("Manager")], seeded["root"]) == 403


def test_admin_role_name_is_configurable(seeded):
    ops = create_user("ops", password=None)
    ops.groups.add(Group.objects.create(name="Ops"))
    with override_settings(TESSERA={"ADMIN_ROLE": "Ops"}):
        assert call([IsAdmin], ops) == 200
        assert call([IsAdmin], seeded["admin"]) == 403
    assert call([IsAdmin], ops) == 403


def test_any_and_all_roles(seeded):
    hr = seeded["hr"]
    hr.groups.add(Group.objects.get(name="Manager"))
    assert call([HasAllRoles("HR", "Manager")], hr) == 200
    assert call([HasAllRoles("HR", "Admin")], hr) == 403
    assert call([HasAnyRole("Admin", "HR")], hr) == 200
    assert call([HasAnyRole("Admin", "Nobody")], hr) == 403


def test_anonymous_is_refused_by_every_class():
    anonymous = AnonymousUser()
    request = SimpleNamespace(user=anonymous, auth=None, method="GET")
    for permission in [
        HasRole("Manager")(),
        IsAdmin(),
        HasScope("read")(),
        TokenHasReadWriteScope(),
        IsOwner(),
    ]:
        assert permission.has_permission(request, None) is False
    assert roles_of(request) == frozenset() and scopes_of(request) == frozenset()


def test_misused_role_classes_fail_loudly():
    with pytest.raises(ImproperlyConfigured):
        HasRole()
    with pytest.raises(TypeError):
        HasRole("Manager", "HR")
    with pytest.raises(TypeError):
        HasAnyRole("")
    with pytest.raises(TypeError):
        HasScope(3)
    assert HasRole("Manager").__name__ == "HasRole('Manager')"


def test_a_database_error_in_the_role_lookup_is_503_not_a_refusal_or_a_pass():
    class BrokenGroups:
        def values_list(self, *args, **kwargs):
            raise OperationalError("database is down")

    user = SimpleNamespace(is_authenticated=True, pk=1, groups=BrokenGroups())
    with pytest.raises(ServiceUnavailable):
        roles_of(SimpleNamespace(user=user))


# --- Scopes --------------------------------------------------------------------------


def only_reading(user):
    return {"read", "posts:read", "undeclared"}


def test_users_hold_every_declared_scope_by_default(seeded):
    assert held_scopes(seeded["user"]) == set(ALL_SCOPES)
    assert held_scopes(AnonymousUser()) == frozenset()


def test_user_scopes_hook_restricts_and_ignores_undeclared_names(seeded, settings):
    settings.TESSERA = {**settings.TESSERA, "USER_SCOPES": f"{__name__}.only_reading"}
    assert held_scopes(seeded["user"]) == {"read", "posts:read"}


def test_login_session_gets_all_held_scopes_and_pat_only_its_own(seeded):
    user = seeded["manager"]
    login = Session(user=user, scopes=None)
    pat = Session(user=user, scopes=["posts:write", "unknown"])
    assert granted_scopes(user, login) == set(ALL_SCOPES)
    assert granted_scopes(user, pat) == {"posts:write"}
    assert granted_scopes(user, None) == set(ALL_SCOPES)  # e.g. Django session login


def test_a_pat_loses_a_scope_its_user_no_longer_holds(api, seeded, settings):
    token = pat_for(seeded["manager"], ["posts:write", "posts:read"])
    body = {"title": "t"}
    assert api.post("/api/posts/", body, format="json", **auth_header(token)).status_code == 201
    settings.TESSERA = {**settings.TESSERA, "USER_SCOPES": f"{__name__}.only_reading"}
    response = api.post("/api/posts/", body, format="json", **auth_header(token))
    assert response.status_code == 403
    assert response.json()["code"] == "scope_required"


def test_pat_without_posts_write_can_read_but_not_post(api, seeded):
    token = pat_for(seeded["manager"], ["read"])
    assert api.get("/api/posts/", **auth_header(token)).status_code == 200
    response = api.post("/api/posts/", {"title": "t"}, format="json", **auth_header(token))
    assert response.status_code == 403
    assert response.json() == {
        "code": "scope_required",
        "detail": "This credential lacks the scope posts:write.",
    }
    assert not Post.objects.exists()
    scoped = pat_for(seeded["manager"], ["posts:write"])
    created = api.post("/api/posts/", {"title": "t"}, format="json", **auth_header(scoped))
    assert created.status_code == 201


def test_has_scope_needs_every_named_scope_and_refuses_undeclared_ones(seeded):
    user = seeded["user"]
    pat = Session(user=user, scopes=["read", "write"], kind="pat")
    assert call([HasScope("read", "write")], user, session=pat) == 200
    assert call([HasScope("read", "posts:read")], user, session=pat) == 403
    assert call([HasScope("typo")], user) == 403  # not declared: nobody holds it


def test_read_write_scope_maps_methods(seeded):
    user = seeded["user"]
    reader = Session(user=user, scopes=["read"], kind="pat")
    assert call([TokenHasReadWriteScope], user, session=reader) == 200
    assert call([TokenHasReadWriteScope], user, session=reader, method="post") == 403
    writer = Session(user=user, scopes=["write"], kind="pat")
    assert call([TokenHasReadWriteScope], user, session=writer, method="post") == 200
    assert call([TokenHasReadWriteScope], user, session=writer) == 403


# --- Ownership -----------------------------------------------------------------------


@pytest.fixture
def manager_post(seeded):
    return Post.objects.create(owner=seeded["manager"], title="Manager's", body="")


def test_only_the_owner_or_an_admin_changes_a_post(api, seeded, manager_post):
    url = f"/api/posts/{manager_post.pk}/"
    hr_manager = seeded["hr"]
    hr_manager.groups.add(Group.objects.get(name="Manager"))  # may change posts, not this one
    other = api.patch(url, {"title": "x"}, format="json", **auth_header(token_for(hr_manager)))
    assert other.status_code == 403
    assert Post.objects.get().title == "Manager's"
    owner_token = token_for(seeded["manager"])
    owner = api.patch(url, {"title": "mine"}, format="json", **auth_header(owner_token))
    assert owner.status_code == 200
    admin_token = token_for(seeded["admin"])
    admin = api.patch(url, {"title": "moderated"}, format="json", **auth_header(admin_token))
    assert admin.status_code == 200
    assert Post.objects.get().title == "moderated"
    assert api.get(url).json()["title"] == "moderated"


def test_my_posts_answers_404_for_another_users_post(api, seeded, manager_post):
    url = f"/api/my-posts/{manager_post.pk}/"
    admin = auth_header(token_for(seeded["admin"]))
    assert api.get(url, **admin).status_code == 404
    assert api.delete(url, **admin).status_code == 404
    assert Post.objects.filter(pk=manager_post.pk).exists()
    assert api.get("/api/my-posts/", **admin).json() == []
    owner = auth_header(token_for(seeded["manager"]))
    assert api.get(url, **owner).json()["title"] == "Manager's"
    assert [p["id"] for p in api.get("/api/my-posts/", **owner).json()] == [manager_post.pk]


def test_my_posts_creates_posts_owned_by_the_user(api, seeded):
    response = api.post(
        "/api/my-posts/",
        {"title": "new", "owner": "hr"},
        format="json",
        **auth_header(token_for(seeded["manager"])),
    )
    assert response.status_code == 201
    assert Post.objects.get().owner == seeded["manager"]


def test_owner_field_is_configurable_and_read_without_a_query(
    seeded, manager_post, django_assert_num_queries
):
    comment = SimpleNamespace(post=manager_post)
    view = SimpleNamespace(owner_field="post__owner")
    request = SimpleNamespace(user=seeded["manager"], method="DELETE")
    with django_assert_num_queries(0):
        assert owner_pk(manager_post, "owner") == seeded["manager"].pk
        assert IsOwner().has_object_permission(request, view, comment) is True
    request.user = seeded["hr"]
    assert IsOwner().has_object_permission(request, view, comment) is False
    assert IsOwner().has_object_permission(request, view, SimpleNamespace(post=None)) is False
