"""Hooks: what apps to the right of the registry add to the registry's own writes.

The registry names no app above it. An app that must act whenever a model version is
written (lineage links the version to its training run), or a model renamed (lineage
renames the model's nodes), registers a hook from its AppConfig.ready, e.g.

    from registry.hooks import register_version_saved
    register_version_saved("lineage.training_run", link_training_run)

Every door (API, admin, MLflow, ingestion) writes versions and renames models through
`registry.services`, and those services run the hooks inside their transaction, after the
change and its audit event were written: a hook that raises undoes the whole write, so a
change is never committed without what its hooks add. A hook that writes records its own
audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from django.contrib.auth.models import AbstractBaseUser

from registry.models import ModelVersion, RegisteredModel


class VersionSaved(Protocol):
    def __call__(
        self, *, actor: AbstractBaseUser | None, version: ModelVersion, created: bool
    ) -> None: ...


_VERSION_SAVED: dict[str, Callable[..., None]] = {}


def register_version_saved(name: str, hook: VersionSaved) -> None:
    """Run `hook(actor=, version=, created=)` after each version create or content change
    (registering a name again replaces it; hooks run in the order they were first named)."""
    _VERSION_SAVED[name] = hook


def version_saved_hooks() -> dict[str, Callable[..., None]]:
    return dict(_VERSION_SAVED)


def version_saved(*, actor: AbstractBaseUser | None, version: ModelVersion, created: bool) -> None:
    """Run every `version_saved` hook; called by the registry's version services only."""
    for hook in list(_VERSION_SAVED.values()):
        hook(actor=actor, version=version, created=created)


class ModelRenamed(Protocol):
    def __call__(
        self, *, actor: AbstractBaseUser | None, model: RegisteredModel, old_name: str
    ) -> None: ...


_MODEL_RENAMED: dict[str, Callable[..., None]] = {}


def register_model_renamed(name: str, hook: ModelRenamed) -> None:
    """Run `hook(actor=, model=, old_name=)` after each rename, `model` carrying its new name
    (registering a name again replaces it)."""
    _MODEL_RENAMED[name] = hook


def model_renamed(*, actor: AbstractBaseUser | None, model: RegisteredModel, old_name: str) -> None:
    """Run every `model_renamed` hook; called by the registry's rename service only."""
    for hook in list(_MODEL_RENAMED.values()):
        hook(actor=actor, model=model, old_name=old_name)
