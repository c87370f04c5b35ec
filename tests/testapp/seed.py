"""The roles the authorization tests grant and one user in each, every flag combination."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

# Each role's model permissions on the posts (checked by DjangoModelPermissions).
ROLES = {
    "Admin": ["add_post", "change_post", "delete_post", "view_post"],
    "Manager": ["add_post", "change_post", "delete_post", "view_post"],
    "HR": ["view_post"],
}
# (username, groups, is_staff, is_superuser)
USERS = [
    ("admin", ["Admin"], True, False),
    ("manager", ["Manager"], False, False),
    ("hr", ["HR"], False, False),
    ("user", [], False, False),
    ("staff", [], True, False),
    ("root", [], True, True),
]


def seed_roles_and_users(password: str) -> None:
    """Create the groups with their permissions, and their users."""
    groups = {}
    for name, codenames in ROLES.items():
        group = Group.objects.create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="testapp", codename__in=codenames)
        )
        groups[name] = group
    for username, roles, is_staff, is_superuser in USERS:
        user = get_user_model().objects.create_user(
            username=username,
            email=f"{username}@example.com",
            password=password,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
        user.groups.set([groups[role] for role in roles])
