from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

# Each role's model permissions on the demo's posts (checked by DjangoModelPermissions).
ROLES = {
    "Admin": ["add_post", "change_post", "delete_post", "view_post"],
    "Manager": ["add_post", "change_post", "delete_post", "view_post"],
    "HR": ["view_post"],
}
# (username, password, groups, is_staff, is_superuser). Demo credentials only: printed
# on purpose.
DEMO_USERS = [
    ("admin", "admin-demo-pass-1", ["Admin"], True, False),
    ("manager", "manager-demo-pass-1", ["Manager"], False, False),
    ("hr", "hr-demo-pass-1", ["HR"], False, False),
    ("user", "user-demo-pass-1", [], False, False),
    ("staff", "staff-demo-pass-1", [], True, False),
    ("root", "root-demo-pass-1", [], True, True),
]


class Command(BaseCommand):
    help = "Create the demo roles with their permissions and one demo user each (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        user_model = get_user_model()
        groups = {}
        for name, codenames in ROLES.items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.set(
                Permission.objects.filter(content_type__app_label="demo", codename__in=codenames)
            )
            groups[name] = group
        self.stdout.write("Demo users (username / password / roles):")
        for username, password, roles, is_staff, is_superuser in DEMO_USERS:
            user, _ = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            user.set_password(password)
            user.is_active = True
            user.is_staff = is_staff
            user.is_superuser = is_superuser
            user.save()
            user.groups.set([groups[r] for r in roles])
            flags = [*roles, *(["staff"] if is_staff else []), *(["superuser"] * is_superuser)]
            self.stdout.write(f"  {username:8} / {password:20} / {', '.join(flags) or '-'}")
