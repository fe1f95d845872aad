"""manage.py seed_demo: demo users (one per role) and each app's demo data.

Idempotent: running it again creates nothing that exists and prints the same credentials.
For demonstrations and local evaluation only — never run it against a production database.
"""

import importlib
import os

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from core import context

DEMO_USERS = [
    ("demo-scientist", "data-scientist"),
    ("demo-pipeline", "pipeline"),
    ("demo-validator", "model-validator"),
    ("demo-validator-2", "model-validator"),
    ("demo-risk", "risk-officer"),
    ("demo-risk-2", "risk-officer"),
    ("demo-auditor", "auditor"),
]
# Full names, so that documents (model cards) name people as a reviewer expects.
DEMO_NAMES = {
    "demo-scientist": ("Dana", "Scientist"),
    "demo-validator": ("Victor", "Validator"),
    "demo-validator-2": ("Vera", "Validator"),
    "demo-risk": ("Rita", "Risk"),
    "demo-risk-2": ("Ravi", "Risk"),
    "demo-auditor": ("Aubrey", "Auditor"),
}


class Command(BaseCommand):
    help = "Seed demo users (one per role) and every app's demo data (its demo.seed)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "modelgov-demo")
        with context.bound(channel="cli"), transaction.atomic():
            users = self._users(password)
            # Discovered like admin.py modules: each app seeds on top of those before it.
            for app_config in apps.get_app_configs():
                try:
                    module = importlib.import_module(f"{app_config.name}.demo")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{app_config.name}.demo":
                        raise
                    continue
                module.seed(users)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at /admin/ with:"))
        self.stdout.write(f"  admin / {password}   (superuser)")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username} / {password}   (role: {role})")
        self.stdout.write("Mint an API token: manage.py issue_token demo-pipeline --name demo")

    def _users(self, password):
        User = get_user_model()
        users = {}
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
        )
        if created:
            admin.set_password(password)
            admin.save()
        for username, role in DEMO_USERS:
            first, last = DEMO_NAMES.get(username, ("", ""))
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "is_staff": True,
                    "email": f"{username}@example.com",
                    "first_name": first,
                    "last_name": last,
                },
            )
            if created:
                user.set_password(password)
                user.save()
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users
