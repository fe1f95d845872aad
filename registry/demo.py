"""Demo catalogue for `manage.py seed_demo`: datasets, features, a job, runs, models, versions.

Every app may have a `demo.py` with `seed(users)`; seed_demo calls them in INSTALLED_APPS
order, so later apps (approvals, model cards) add their demo data on top of this one.
Idempotent: what exists is left alone.
"""

import uuid
from datetime import timedelta

from django.utils import timezone

from registry import services
from registry.models import Dataset, Job, RegisteredModel, Run

# Stable run ids so that a second seeding finds the runs of the first.
SEED_NAMESPACE = uuid.UUID("6f1c1d1e-8d3f-4a57-9a53-9d3c2f4b7a10")

DATASETS = [
    (
        "postgres://warehouse:5432",
        "public.loan_applications",
        True,
        [
            ("applicant_age", "integer", True),
            ("income", "decimal", True),
            ("loan_amount", "decimal", False),
            ("defaulted", "boolean", False),
        ],
    ),
    (
        "postgres://warehouse:5432",
        "public.customer_events",
        True,
        [
            ("customer_id", "string", True),
            ("event_type", "string", False),
            ("occurred_at", "timestamp", False),
        ],
    ),
    (
        "s3://ml-features",
        "churn/features_v2",
        False,
        [
            ("tenure_months", "integer", False),
            ("monthly_spend", "double", False),
            ("support_tickets", "integer", False),
        ],
    ),
]

MODELS = [
    (
        "credit-scoring",
        "high",
        "Retail Lending",
        ["credit", "regulated"],
        "Probability of default for consumer loan applications.",
        "public.loan_applications",
        {"auc": 0.871, "ks": 0.52, "gini": 0.742},
    ),
    (
        "churn-predictor",
        "medium",
        "Marketing",
        ["marketing"],
        "Monthly churn propensity for subscription customers.",
        "churn/features_v2",
        {"auc": 0.812, "precision_at_10": 0.41},
    ),
    (
        "fraud-detector",
        "critical",
        "Payments",
        ["fraud", "realtime", "regulated"],
        "Real-time card-not-present fraud scoring.",
        "public.customer_events",
        {"auc": 0.953, "recall_at_1pct_fpr": 0.63},
    ),
]


def seed(users: dict) -> None:
    """Create the demo catalogue owned by demo-scientist, written by demo-pipeline."""
    scientist, pipeline = users["demo-scientist"], users["demo-pipeline"]
    datasets = _datasets(pipeline)
    _models(scientist, pipeline, datasets)


def _datasets(actor):
    out = {}
    for namespace, name, pii, features in DATASETS:
        dataset = Dataset.objects.filter(namespace=namespace, name=name).first()
        if dataset is None:
            dataset = services.dataset_create(
                actor=actor,
                namespace=namespace,
                name=name,
                contains_pii=pii,
                description=f"Demo dataset {name}.",
            )
            for fname, dtype, fpii in features:
                services.feature_create(
                    actor=actor, dataset=dataset, name=fname, dtype=dtype, pii=fpii
                )
            services.dataset_version_create(
                actor=actor,
                dataset=dataset,
                version="2026-10-01",
                schema=[{"name": f, "type": t} for f, t, _ in features],
            )
        out[name] = dataset
    return out


def _models(owner, pipeline, datasets):
    job = Job.objects.filter(namespace="airflow", name="train_models").first()
    if job is None:
        job = services.job_create(
            actor=pipeline,
            namespace="airflow",
            name="train_models",
            description="Nightly training DAG.",
        )
    for name, tier, unit, tags, description, dataset_name, metrics in MODELS:
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            model = services.registered_model_create(
                actor=owner,
                name=name,
                description=description,
                business_unit=unit,
                risk_tier=tier,
                tags=tags,
            )
            services.model_permission_grant(
                actor=owner, model=model, grantee=pipeline, permission="change_registeredmodel"
            )
        if model.versions.exists():
            continue
        run_id = uuid.uuid5(SEED_NAMESPACE, name)
        run = Run.objects.filter(run_id=run_id).first() or services.run_create(
            actor=pipeline,
            job=job,
            run_id=run_id,
            state="COMPLETE",
            started_at=timezone.now() - timedelta(hours=2),
            ended_at=timezone.now(),
            facets={"nominalTime": {"nominalStartTime": "2026-11-01T00:00:00Z"}},
        )
        for number in (1, 2):
            services.model_version_create(
                actor=pipeline,
                model=model,
                artifact_uri=f"s3://ml-artifacts/{name}/v{number}/model.pkl",
                artifact_sha256=uuid.uuid5(SEED_NAMESPACE, f"{name}{number}").hex * 2,
                framework="scikit-learn 1.5",
                parameters={"n_estimators": 200 * number, "max_depth": 6},
                metrics={k: round(v - 0.01 * (2 - number), 4) for k, v in metrics.items()},
                training_run=run if number == 2 else None,
                intended_use=f"{description} Decision support; a human reviews declines.",
                limitations="Trained on 2019–2026 data; not validated for other markets.",
                training_data_summary=f"{datasets[dataset_name]} snapshot 2026-10-01.",
                evaluation_summary="Out-of-time validation on the most recent quarter.",
            )
