"""manage.py appoint_approver (--user NAME | --group NAME) (MODEL [MODEL …] | --business-unit NAME)
[--revoke]

Appoints (or withdraws) who may decide promotion requests: per model (the object permission
to decide its promotions), or for every model of a business unit, present and future. The
person also needs an approver role (model-validator or risk-officer group) to fill a slot.
Audited."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from approvals import services
from core import context
from core.errors import Conflict
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = (
        "Let a user or group decide the promotion requests of the named models, or of every "
        "model of a business unit."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user")
        who.add_argument("--group")
        parser.add_argument("models", nargs="*", help="registered model names")
        parser.add_argument(
            "--business-unit", help='every model of this business unit, e.g. "Retail Lending"'
        )
        parser.add_argument("--revoke", action="store_true", help="withdraw instead")

    def handle(self, *args, **options):
        unit, names = options["business_unit"], options["models"]
        if bool(unit) == bool(names):
            raise CommandError("Name the models, or give --business-unit (not both).")
        try:
            grantee = (
                get_user_model().objects.get(username=options["user"])
                if options["user"]
                else Group.objects.get(name=options["group"])
            )
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named '{options['user']}'.") from exc
        except Group.DoesNotExist as exc:
            raise CommandError(f"No group named '{options['group']}'.") from exc
        with context.bound(channel="cli"):
            if unit:
                self._business_unit(unit, grantee, revoke=options["revoke"])
                return
            for name in names:
                self._model(name, grantee, revoke=options["revoke"])

    def _business_unit(self, unit, grantee, *, revoke):
        service = (
            services.business_unit_appointment_revoke
            if revoke
            else services.business_unit_appointment_grant
        )
        try:
            service(actor=None, business_unit=unit, grantee=grantee)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except Conflict as exc:
            self.stdout.write(f"business unit '{unit}': {exc}")
            return
        self.stdout.write(f"business unit '{unit}': done")

    def _model(self, name, grantee, *, revoke):
        service = services.decide_permission_revoke if revoke else services.decide_permission_grant
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            raise CommandError(f"No model named '{name}'.")
        try:
            service(actor=None, model=model, grantee=grantee)
        except Conflict as exc:
            self.stdout.write(f"{name}: {exc}")
            return
        self.stdout.write(f"{name}: done")
