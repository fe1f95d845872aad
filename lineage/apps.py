from django.apps import AppConfig


def _link_training_run(*, actor, version, created: bool) -> None:
    if version.training_run_id is None:
        return  # nothing to link (and no savepoint to open)
    from lineage.services import model_version_link_run

    model_version_link_run(actor=actor, version=version)


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Lineage"

    def ready(self) -> None:
        from registry.hooks import register_version_saved

        # Every door writes versions through registry.services: a version with a training run
        # is linked to the run and the data it read in the same transaction, or not written.
        register_version_saved("lineage.training_run", _link_training_run)
