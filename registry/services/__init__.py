"""Every write to the catalogue. Each service checks its permissions, validates, writes and
records exactly one audit event in the same transaction.

`from registry import services; services.model_version_create(...)` is the way in: the
modules below group the services by what they write.
"""

from registry.services._common import _plain as _plain  # registry.ingest diffs the same way
from registry.services.catalogue import (
    TERMINAL_RUN_STATES,
    check_run_transition,
    dataset_archive,
    dataset_create,
    dataset_update,
    dataset_version_create,
    feature_archive,
    feature_create,
    feature_update,
    job_archive,
    job_create,
    job_update,
    run_create,
    run_update,
)
from registry.services.grants import (
    model_permission_grant,
    model_permission_revoke,
    object_permission_assign,
    object_permission_remove,
)
from registry.services.models import (
    MODEL_EDITABLE,
    MODEL_NAME_UNAVAILABLE,
    VERSION_EDITABLE,
    check_version_changes,
    content_digest,
    governed_aliases,
    model_alias_delete,
    model_alias_set,
    model_version_create,
    model_version_label_set,
    model_version_update,
    registered_model_archive,
    registered_model_create,
    registered_model_label_set,
    registered_model_rename,
    registered_model_update,
)
from registry.services.tokens import (
    api_token_issue,
    api_token_revoke,
)

__all__ = [
    "MODEL_EDITABLE",
    "MODEL_NAME_UNAVAILABLE",
    "TERMINAL_RUN_STATES",
    "VERSION_EDITABLE",
    "api_token_issue",
    "api_token_revoke",
    "check_run_transition",
    "check_version_changes",
    "content_digest",
    "dataset_archive",
    "dataset_create",
    "dataset_update",
    "dataset_version_create",
    "feature_archive",
    "feature_create",
    "feature_update",
    "governed_aliases",
    "job_archive",
    "job_create",
    "job_update",
    "model_alias_delete",
    "model_alias_set",
    "model_permission_grant",
    "model_permission_revoke",
    "model_version_create",
    "model_version_label_set",
    "model_version_update",
    "object_permission_assign",
    "object_permission_remove",
    "registered_model_archive",
    "registered_model_create",
    "registered_model_label_set",
    "registered_model_rename",
    "registered_model_update",
    "run_create",
    "run_update",
]
