"""A mapper process for the killed-mapper test: maps one batch, but stalls once the batch is
written to the catalogue and the graph, before its transaction commits, and says so, so that
the test can kill it there."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from core import context  # noqa: E402
from lineage import services  # noqa: E402


def main(ready_file: str) -> None:
    original = services._map_batch

    def stall_before_commit(actor, items, ledger=None):
        summaries = original(actor, items, ledger)
        Path(ready_file).write_text(str(len(items)))
        time.sleep(120)  # killed here, mid-batch, its transaction open
        return summaries

    services._map_batch = stall_before_commit
    with context.bound(channel="task"):
        services.lineage_events_map()


if __name__ == "__main__":
    main(sys.argv[1])
