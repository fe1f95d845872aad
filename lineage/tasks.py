"""Mapping accepted lineage events into the graph (after each accepting commit, and swept by
beat every few seconds for anything left, e.g. by a worker that died mid-batch)."""

from celery import shared_task

from core import context
from lineage.services import lineage_events_map_all


@shared_task(bind=True, ignore_result=True)
def map_lineage_events(self) -> int:
    """Map pending events batch by batch; idempotent (mapped events are never claimed again)."""
    if self.request.is_eager:  # in-process: the posting request's context carries on
        return lineage_events_map_all().claimed
    with context.bound(channel="task", task_id=self.request.id):
        return lineage_events_map_all().claimed
