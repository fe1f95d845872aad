"""What the benchmarks read of other processes on Linux (/proc): CPU seconds, time waiting
for a CPU, children, and the processes serving an HTTP benchmark. Elsewhere the figures are 0.
Imported by the bench scripts; not one itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds a process ran on a CPU and waited, runnable, for one."""
    try:
        ran, waited, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(ran) / 1e9, int(waited) / 1e9


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def server_pids(server: subprocess.Popen, database_url: str) -> tuple[list[int], list[int]]:
    """gunicorn's workers, and the PostgreSQL backends serving the database."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return children(server.pid), [pid for (pid,) in backends]
