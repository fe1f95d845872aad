"""Demo lineage: an ETL run per demo dataset and the training runs that read them."""

import uuid

from lineage import services
from registry.models import Dataset, ModelVersion

DEMO_NAMESPACE = uuid.UUID("0e5b7d8e-3b1c-4c55-8d0f-6c1a4b9e2f31")
PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.2.0"


def _event(run_id, job, inputs, outputs, event_type="COMPLETE"):
    return {
        "eventType": event_type,
        "eventTime": "2026-11-01T02:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(run_id)},
        "job": {"namespace": "airflow", "name": job},
        "inputs": [{"namespace": ns, "name": name} for ns, name in inputs],
        "outputs": [{"namespace": ns, "name": name} for ns, name in outputs],
    }


def seed(users: dict) -> None:
    """Post demo events through the real ingestion service (idempotent: duplicates are no-ops)."""
    pipeline = users["demo-pipeline"]
    datasets = {
        d.name: d
        for d in Dataset.objects.filter(
            name__in=["public.loan_applications", "public.customer_events", "churn/features_v2"]
        )
    }
    if len(datasets) < 3:
        return
    loans, events = datasets["public.loan_applications"], datasets["public.customer_events"]
    services.lineage_events_accept(
        actor=pipeline,
        payloads=[
            _event(
                uuid.uuid5(DEMO_NAMESPACE, "etl-churn"),
                "build_churn_features",
                [("postgres://warehouse:5432", events.name)],
                [("s3://ml-features", "churn/features_v2")],
            )
        ],
    )
    sources = {
        "credit-scoring": loans,
        "fraud-detector": events,
        "churn-predictor": datasets["churn/features_v2"],
    }
    for version in ModelVersion.objects.filter(training_run__isnull=False).select_related(
        "model", "training_run__job"
    ):
        source = sources.get(version.model.name)
        if source is None:
            continue
        run = version.training_run
        services.lineage_events_accept(
            actor=pipeline,
            payloads=[_event(run.run_id, run.job.name, [(source.namespace, source.name)], [])],
        )
        # Mapped now even when a worker would (the training runs' inputs must be in the
        # graph before the versions are linked to them).
        services.lineage_events_map_all()
        services.model_version_link_run(actor=pipeline, version=version)
