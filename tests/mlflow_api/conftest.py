"""The MLflow door's tests reuse the approvals personas and shortcuts (file, decide, promote)
and, like them, the default policies less the model-card gate."""

from tests.approvals.conftest import (  # noqa: F401 - fixtures
    DOCUMENTATION,
    _policies_without_card_gate,
    appoint,
    approvers,
    decide,
    file,
    make_version,
    promote,
    training_run,
    validator_2,
    version,
)
