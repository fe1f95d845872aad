"""Mapping accepted lineage events into the graph (after each accepting commit, and swept by
beat every few seconds for anything left, e.g. by a worker that died mid-batch)."""

import time

from celery import shared_task

from core import context
from lineage.services import lineage_events_map_all

# A worker's clock may run this far ahead of the web processes' (NTP keeps hosts well within
# it): a task is skipped only for a drain that began this much later than the task was sent.
CLOCK_MARGIN = 1.0


class _LastDrain:
    """When this worker process last began mapping everything pending, and got to the end
    (wall clock, before its first claim)."""

    began = float("-inf")


@shared_task(bind=True, ignore_result=True)
def map_lineage_events(self, sent_at: float | None = None) -> int:
    """Map pending events batch by batch; idempotent (mapped events are never claimed again).

    `sent_at` is when the web process sent the task, after its events were committed (for a
    task due later, when it is due: it stands for the commits until then). If this
    process has since begun a drain that got to the end, that drain's first claim saw those
    events (and took them, or another mapper held them): the task has nothing of its own to
    do and ends without a query. While events arrive faster than a batch maps, web processes
    send more tasks than the worker runs; they end here instead of each claiming nothing.
    The beat sweep's task carries no `sent_at` and always claims: it also maps the events a
    mapper held and then gave back by failing."""
    if sent_at is not None and sent_at + CLOCK_MARGIN < _LastDrain.began:
        return 0
    began = time.time()
    if self.request.is_eager:  # in-process: the posting request's context carries on
        result = lineage_events_map_all()
    else:
        with context.bound(channel="task", task_id=self.request.id):
            result = lineage_events_map_all()
    if result.drained:  # drains of one process run one after another
        _LastDrain.began = began
    return result.claimed
