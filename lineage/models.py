"""The lineage graph's own tables: raw events as received, and edges between nodes."""

from django.conf import settings
from django.db import models


class LineageEvent(models.Model):
    """An accepted OpenLineage event, kept exactly as received (append-only)."""

    event_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=12)  # RunEvent | DatasetEvent | JobEvent
    event_type = models.CharField(max_length=10, blank=True)
    event_time = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    job_namespace = models.CharField(max_length=255, blank=True)
    job_name = models.CharField(max_length=500, blank=True)
    producer = models.CharField(max_length=1000, blank=True)
    payload = models.JSONField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_type or '-'} {self.job_namespace}:{self.job_name}"


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "relation"], name="uniq_edge"),
        ]
        indexes = [
            models.Index(fields=["target", "relation"], name="edge_target_idx"),
            models.Index(fields=["source_base"], name="edge_source_base_idx"),
            models.Index(fields=["target_base"], name="edge_target_base_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} -[{self.relation}]-> {self.target}"
