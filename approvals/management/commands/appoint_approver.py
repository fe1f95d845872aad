"""manage.py appoint_approver (--user NAME | --group NAME) MODEL [MODEL …] [--revoke]

Grants (or withdraws) the per-model permission to decide promotion requests. The person also
needs an approver role (model-validator or risk-officer group) to fill a slot. Audited."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from approvals import permissions
from core import context
from core.errors import Conflict
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = "Let a user or group decide the promotion requests of the named models."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user")
        who.add_argument("--group")
        parser.add_argument("models", nargs="+", help="registered model names")
        parser.add_argument("--revoke", action="store_true", help="withdraw instead")

    def handle(self, *args, **options):
        try:
            grantee = (
                get_user_model().objects.get(username=options["user"])
                if options["user"]
                else Group.objects.get(name=options["group"])
            )
        except (get_user_model().DoesNotExist, Group.DoesNotExist) as exc:
            raise CommandError(str(exc)) from exc
        service = (
            permissions.decide_permission_revoke
            if options["revoke"]
            else permissions.decide_permission_grant
        )
        with context.bound(channel="cli"):
            for name in options["models"]:
                model = RegisteredModel.objects.filter(name=name).first()
                if model is None:
                    raise CommandError(f"No model named '{name}'.")
                try:
                    service(actor=None, model=model, grantee=grantee)
                except Conflict as exc:
                    self.stdout.write(f"{name}: {exc.detail}")
                    continue
                self.stdout.write(f"{name}: done")
