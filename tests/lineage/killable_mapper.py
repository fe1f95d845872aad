"""A mapper process for the killed-mapper test: maps one batch, but stalls after mapping its
first event (having written to the graph inside the batch's transaction) and says so, so that
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
    original = services._map_event

    def stall_after_first(actor, event):
        summary = original(actor, event)
        Path(ready_file).write_text(str(event.pk))
        time.sleep(120)  # killed here, mid-batch, its transaction open
        return summary

    services._map_event = stall_after_first
    with context.bound(channel="task"):
        services.lineage_events_map()


if __name__ == "__main__":
    main(sys.argv[1])
