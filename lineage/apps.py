from django.apps import AppConfig


def _link_training_run(*, actor, version, created: bool) -> None:
    if version.training_run_id is None:
        return  # nothing to link (and no savepoint to open)
    from lineage.services import model_version_link_run

    model_version_link_run(actor=actor, version=version)


def _rename_model_nodes(*, actor, model, old_name: str) -> None:
    from lineage.services import model_nodes_rename

    model_nodes_rename(actor=actor, model=model, old_name=old_name)


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Lineage"

    def ready(self) -> None:
        from registry.hooks import register_model_renamed, register_version_saved

        # Every door writes versions through registry.services: a version with a training run
        # is linked to the run and the data it read in the same transaction, or not written.
        register_version_saved("lineage.training_run", _link_training_run)
        # Node ids carry a model's name: its nodes are renamed in the rename's transaction.
        register_model_renamed("lineage.model_nodes", _rename_model_nodes)
