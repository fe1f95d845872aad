"""Sealing in tests, where other sessions may share the PostgreSQL server.

On PostgreSQL the sealer takes only events no running transaction can still precede, and
transaction ids are server-wide: a transaction open in *another* database on the same server
holds sealing back until it ends. Tests that need everything sealed therefore seal until
nothing is pending (which, on an idle server, is the first call).
"""

import time

from audit import selectors
from audit.services import SealResult, audit_seal


def seal_all(timeout: float = 60.0) -> SealResult:
    deadline = time.monotonic() + timeout
    sealed = 0
    while True:
        result = audit_seal()
        sealed += result.sealed
        if selectors.pending_count() == 0 or time.monotonic() > deadline:
            result.sealed = sealed
            return result
        time.sleep(0.05)
