"""manage.py issue_token USERNAME --name LABEL [--days N]: mint an API token, print it once."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core import context
from registry.services import api_token_issue


class Command(BaseCommand):
    help = "Mint a named API token for a user. The token is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="A label, e.g. 'airflow-prod'.")
        parser.add_argument("--days", type=int, default=None, help="Lifetime in days.")

    def handle(self, *args, username, name, days, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named '{username}'.") from exc
        with context.bound(channel="cli"):
            try:
                token, plain = api_token_issue(actor=None, user=user, name=name, days=days)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
        expiry = token.expiry.isoformat() if token.expiry else "never"
        self.stderr.write(f"Token '{name}' for {username} (expires {expiry}). Shown once:")
        self.stdout.write(plain)
