"""manage.py audit_checkpoint: seal, sign the chain's head, print the checkpoint (JSON)."""

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_checkpoint_create
from core import context


class Command(BaseCommand):
    help = "Record and print a signed checkpoint (seq, head hash, HMAC) to keep outside."

    def handle(self, *args, **options):
        with context.bound(channel="cli"):
            try:
                checkpoint = audit_checkpoint_create(actor=None)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "seq": checkpoint.seq,
                    "hash": checkpoint.hash,
                    "mac": checkpoint.mac,
                    "created_at": checkpoint.created_at.isoformat(),
                }
            )
        )
