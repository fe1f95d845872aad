"""manage.py audit_verify [--from SEQ] [--checkpoint JSON]: seal, then verify the chain."""

from django.core.management.base import BaseCommand, CommandError

from audit import chain, selectors
from audit.services import audit_seal


class Command(BaseCommand):
    help = "Seal pending events, recompute the hash chain and name the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_seq", type=int, default=1)
        parser.add_argument(
            "--checkpoint",
            help="A checkpoint as printed by audit_checkpoint (JSON), or a file holding it.",
        )

    def handle(self, *args, from_seq, checkpoint, **options):
        audit_seal(wait=True)
        if checkpoint:
            try:
                seq, head, mac = chain.parse_checkpoint(_read(checkpoint))
            except (ValueError, OSError) as exc:
                raise CommandError(f"Not a checkpoint: {exc}") from exc
            result = selectors.verify_checkpoint(seq=seq, head=head, mac=mac)
        else:
            result = selectors.verify_chain(from_seq=from_seq)
        self.stdout.write(
            f"checked {result.checked} events; head seq {result.head_seq} hash "
            f"{result.head_hash or '-'}; pending {result.pending}"
            + (f" (oldest {result.pending_age:.1f} s)" if result.pending_age is not None else "")
        )
        if not result.ok:
            where = f" at seq {result.broken_seq}" if result.broken_seq is not None else ""
            raise CommandError(f"BROKEN{where}: {result.reason}")
        self.stdout.write(self.style.SUCCESS("audit chain intact"))


def _read(value: str) -> str:
    if value.lstrip().startswith("{"):
        return value
    with open(value, encoding="utf-8") as handle:
        return handle.read()
