"""The lineage graph's own tables: raw events as received, and edges between nodes."""

from django.conf import settings
from django.db import models

from core.fields import StoredJSONField


class EventState(models.TextChoices):
    PENDING = "pending", "Pending (accepted, not yet in the graph)"
    MAPPED = "mapped", "Mapped into the graph"
    REJECTED = "rejected", "Rejected by the graph (see reason)"


class LineageEvent(models.Model):
    """An accepted OpenLineage event, kept exactly as received (the payload never changes);
    mapped into the graph after commit, which records its state and any rejection reason."""

    # Unique through the constraint below: a plain unique index, without the pattern index
    # PostgreSQL gets for a unique CharField (nothing searches hashes by prefix).
    event_hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=12)  # RunEvent | DatasetEvent | JobEvent
    event_type = models.CharField(max_length=10, blank=True)
    event_time = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    job_namespace = models.CharField(max_length=255, blank=True)
    job_name = models.CharField(max_length=500, blank=True)
    producer = models.CharField(max_length=1000, blank=True)
    payload = StoredJSONField()  # PostgreSQL `json`: the text as written, read whole
    submitted_by = models.ForeignKey(  # indexed by lineage_event_poster_idx, which leads with it
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    state = models.CharField(max_length=8, choices=EventState.choices, default=EventState.PENDING)
    reason = models.TextField(blank=True)
    mapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            # The mapper's claim: pending events, oldest event time first.
            models.Index(
                fields=["event_time", "id"],
                name="lineage_event_pending_idx",
                condition=models.Q(state="pending"),
            ),
            models.Index(fields=["submitted_by", "state"], name="lineage_event_poster_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event_hash"], name="lineage_event_hash_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_type or '-'} {self.job_namespace}:{self.job_name}"


class ModelMention(models.Model):
    """A registered model named by an event's `modelgov_model` facet: the event (and its raw
    payload) is shown only to those who may see every model it names. `named` is the name as
    the event gives it; `model_name` is that model's name now (a rename changes it), which is
    the model the event registers a version of when it is mapped later (still pending, or
    rejected and mapped again)."""

    event = models.ForeignKey(LineageEvent, on_delete=models.PROTECT, related_name="mentions")
    named = models.CharField(max_length=100)
    model_name = models.CharField(max_length=100, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "named"], name="uniq_model_mention_named")
        ]

    def __str__(self) -> str:
        return self.model_name


class Relation(models.TextChoices):
    INPUT = "input", "Input (dataset version → run)"
    OUTPUT = "output", "Output (run → dataset version or model version)"
    PARENT = "parent", "Parent (run → child run)"
    COLUMN = "column", "Column-derived (field → field)"
    TRAINED_ON = "trained_on", "Trained on (dataset version → model version)"


# Relations of the versioned graph, which must stay a DAG.
VERSION_RELATIONS = (Relation.INPUT, Relation.OUTPUT, Relation.PARENT, Relation.TRAINED_ON)


class Edge(models.Model):
    """A directed edge between two nodes, by node id (see lineage/nodes.py)."""

    source = models.CharField(max_length=1100)
    target = models.CharField(max_length=1100)
    relation = models.CharField(max_length=12, choices=Relation.choices)
    # Unversioned ids, to start walks from "any version of this dataset".
    source_base = models.CharField(max_length=1100)
    target_base = models.CharField(max_length=1100)
    # The model an edge touches (model nodes only), so that edges are listed only to those
    # who may see that model.
    model_name = models.CharField(max_length=100, blank=True, default="")
    # Event time: of the write for an output edge, of the read for an input edge resolved by
    # time (an unversioned input). Inputs resolve to the latest version written at or before
    # the read, whatever order the events arrive in.
    at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "relation"], name="uniq_edge"),
        ]
        indexes = [
            models.Index(fields=["target", "relation"], name="edge_target_idx"),
            # Walks from any version of a dataset (by base, any relation), and the reads by
            # time: a dataset's timed input edges (re-pointed when a version is written
            # late) and its output edges by write time (the version a read resolves to).
            # One index for each end: the fewer a mapping batch's thousands of edges update.
            models.Index(fields=["source_base", "relation", "at"], name="edge_source_base_rel_idx"),
            models.Index(fields=["target_base", "relation", "at"], name="edge_target_base_rel_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} -[{self.relation}]-> {self.target}"
