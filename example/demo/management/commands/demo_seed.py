from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

ROLES = ("Admin", "Manager", "HR")
# (username, password, groups). Demo credentials only: printed on purpose.
DEMO_USERS = [
    ("admin", "admin-demo-pass-1", ["Admin"]),
    ("manager", "manager-demo-pass-1", ["Manager"]),
    ("hr", "hr-demo-pass-1", ["HR"]),
    ("user", "user-demo-pass-1", []),
]


class Command(BaseCommand):
    help = "Create the demo roles and one demo user per role (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        user_model = get_user_model()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        self.stdout.write("Demo users (username / password / roles):")
        for username, password, roles in DEMO_USERS:
            user, _ = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            user.set_password(password)
            user.is_active = True
            user.is_staff = username == "admin"
            user.save()
            user.groups.set([groups[r] for r in roles])
            self.stdout.write(f"  {username:8} / {password:20} / {', '.join(roles) or '-'}")
