"""Concurrent audited writers and sealers on PostgreSQL: a gapless, verifiable chain."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from audit import selectors
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_seal
from tests.audit.sealing import seal_all

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, WRITES_PER_THREAD = 4, 125  # 4 processes × 4 threads × 125 = 2,000 writes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_sealers_give_a_gapless_verifiable_chain(tmp_path):
    assert not AuditEvent.objects.exists()  # starting from an empty log
    db = connection.settings_dict
    env = {
        **os.environ,
        "SECRET_KEY": "concurrency-test",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    start = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests/audit/concurrent_writer.py"),
                str(start),
                str(WRITES_PER_THREAD),
                str(p),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    # Two extra sealers that race each other (and the writers' own after-commit sealing).
    stop = threading.Event()

    def sealer():
        try:
            while not stop.is_set():
                audit_seal(wait=True, batch=50)
        finally:
            connection.close()

    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    for thread in sealers:
        thread.start()
    start.touch()
    committed = 0
    for writer in writers:
        out, _ = writer.communicate(timeout=240)
        assert writer.returncode == 0
        committed += json.loads(out.strip().splitlines()[-1])["committed"]
    stop.set()
    for thread in sealers:
        thread.join(timeout=60)
    seal_all()

    rolled_back_per_thread = sum(1 for n in range(WRITES_PER_THREAD) if n % 10 == 3)
    assert committed == PROCESSES * 4 * (WRITES_PER_THREAD - rolled_back_per_thread)
    assert AuditEvent.objects.filter(action="test.concurrent").count() == committed
    seqs = list(AuditSeal.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, AuditEvent.objects.count() + 1))
    prev_hashes = AuditSeal.objects.values_list("prev_hash", flat=True)
    assert len(set(prev_hashes)) == len(prev_hashes)
    assert selectors.verify_chain().ok
