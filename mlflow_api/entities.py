"""modelgov's models and versions in the JSON shape of MLflow's registry protos
(mlflow/protos/model_registry.proto): timestamps in epoch milliseconds, versions as strings,
stages by MLflow's names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.models import ModelVersion, RegisteredModel, Stage

STAGE_TO_MLFLOW = {
    Stage.DEVELOPMENT: "None",
    Stage.STAGING: "Staging",
    Stage.PRODUCTION: "Production",
    Stage.ARCHIVED: "Archived",
}
MLFLOW_TO_STAGE = {name.lower(): stage for stage, name in STAGE_TO_MLFLOW.items()}


def millis(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def _tags(labels: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(labels.items())]


def model_version(
    version: ModelVersion, *, aliases: list[str] | None = None, status_message: str = ""
) -> dict[str, Any]:
    """A ModelVersion message. `status_message` says where a pending promotion stands."""
    return {
        "name": version.model.name,
        "version": str(version.version),
        "creation_timestamp": millis(version.created_at),
        "last_updated_timestamp": millis(version.updated_at),
        "user_id": version.created_by.get_username(),
        "current_stage": STAGE_TO_MLFLOW[version.stage],
        "description": version.description,
        "source": version.artifact_uri,
        "run_id": version.source_run_id,
        "status": "READY",
        "status_message": status_message,
        "tags": _tags(version.labels),
        "run_link": "",
        "aliases": sorted(aliases or []),
        **({"model_id": version.source_model_id} if version.source_model_id else {}),
    }


def registered_model(
    model: RegisteredModel,
    *,
    latest_versions: list[ModelVersion],
    version_aliases: dict[int, list[str]],
    aliases: list[tuple[str, int]],
) -> dict[str, Any]:
    """A RegisteredModel message with its latest version per stage and its aliases."""
    return {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(model.updated_at),
        "user_id": model.owner.get_username(),
        "description": model.description,
        "latest_versions": [
            model_version(v, aliases=version_aliases.get(v.pk)) for v in latest_versions
        ],
        "tags": _tags(model.labels),
        "aliases": [{"alias": alias, "version": str(number)} for alias, number in sorted(aliases)],
    }
