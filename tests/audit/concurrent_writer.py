"""A writer process for the audit concurrency test: 4 threads of audited writes, some rolled
back, some held open across sealer runs. Prints how many writes it committed."""

import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from audit.services import audit_record  # noqa: E402
from core import context  # noqa: E402


class Rollback(Exception):
    pass


def main(start_file: str, writes_per_thread: int, process: int) -> None:
    committed = []
    lock = threading.Lock()

    def thread(index: int) -> None:
        mine = 0
        while not os.path.exists(start_file):  # released together
            time.sleep(0.005)
        with context.bound(channel="task"):
            for n in range(writes_per_thread):
                try:
                    with transaction.atomic():
                        audit_record(
                            actor=None,
                            action="test.concurrent",
                            object_type="test.writer",
                            object_id=f"{process}-{index}-{n}",
                        )
                        if n % 10 == 3:
                            raise Rollback
                        if n % 40 == 7:
                            time.sleep(0.3)  # long-running: sealers run meanwhile
                    mine += 1
                except Rollback:
                    pass
        connection.close()
        with lock:
            committed.append(mine)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"committed": sum(committed)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
