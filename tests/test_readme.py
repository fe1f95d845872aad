"""The README runs as written: its shell blocks, in order, against a served instance.

A fresh database is migrated and seeded (what `make run` does), gunicorn serves it, and every
```sh block of README.md runs in one bash session (so a variable set in one block reaches the
next) with `set -eo pipefail`, from a scratch folder holding the project's `.venv`,
`manage.py` and `scripts/` — exactly the paths the README uses. A block preceded by the HTML
comment `<!-- readme: skip -->` is not run (it starts a server, or needs a tool the instance
does not have); `<!-- readme: expect TEXT -->` (one or more, before the fence) names text the
block's output must contain. The README's `127.0.0.1:8000` is replaced by the test's port.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*readme:\s*(skip|expect)\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    line: int
    code: str
    skip: bool = False
    expect: list[str] = field(default_factory=list)


def shell_blocks(text: str) -> list[Block]:
    """The ```sh blocks of a Markdown text, with the directives in the lines just before them."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = DIRECTIVE.match(line)
        fence = FENCE.match(line)
        if directive:
            pending.append((directive.group(1), directive.group(2)))
        elif fence:
            language, start = fence.group(1), index
            body = []
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            if language == "sh":
                block = Block(line=start + 1, code="\n".join(body))
                for kind, argument in pending:
                    if kind == "skip":
                        block.skip = True
                    else:
                        block.expect.append(argument)
                blocks.append(block)
            pending = []
        elif line.strip():
            pending = []
        index += 1
    return blocks


def test_readme_directives_are_read():
    text = (
        "<!-- readme: skip -->\n```sh\nmake run\n```\n\n"
        "<!-- readme: expect ok -->\n<!-- readme: expect two -->\n```sh\necho ok two\n```\n"
        "<!-- readme: skip -->\nprose in between cancels it\n```sh\necho three\n```\n"
        "```python\nprint(4)\n```\n"
    )
    blocks = shell_blocks(text)
    assert [(b.skip, b.expect, b.code) for b in blocks] == [
        (True, [], "make run"),
        (False, ["ok", "two"], "echo ok two"),
        (False, [], "echo three"),
    ]


def _free_port() -> int:
    wanted = os.environ.get("README_TEST_PORT")
    if wanted:
        return int(wanted)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fresh_database(tmp_path):
    """A database URL of an empty database of the kind the suite runs on, dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'readme.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'modelgov'}_readme_{os.getpid()}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until_served(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("gunicorn did not answer within 60 s")


def test_readme_shell_blocks_run_in_order_against_a_served_instance(tmp_path, fresh_database):
    blocks = shell_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    runnable = [b for b in blocks if not b.skip]
    assert len(runnable) >= 6, "the README's runnable examples went missing"

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    work = tmp_path / "work"
    work.mkdir()
    for name in (".venv", "manage.py", "scripts"):
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "PYTEST", "AUDIT_"))
    }
    # The keys as `make setup` writes them: the README's commands read them from var/.env.
    (work / "var").mkdir()
    env_file = work / "var" / ".env"
    env_file.write_text(
        "SECRET_KEY=readme-test-secret-key-" + "x" * 30 + "\n"
        "AUDIT_SIGNING_KEY=readme-test-audit-signing-key\n"
    )
    env.pop("SECRET_KEY", None)
    env.update(
        DATABASE_URL=fresh_database,
        ENV_FILE=str(env_file),
        MEDIA_ROOT=str(tmp_path / "media"),
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="0",
    )
    python = str(ROOT / ".venv" / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        done = subprocess.run(
            [python, "manage.py", *command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    gunicorn = shutil.which("gunicorn", path=str(Path(python).parent)) or "gunicorn"
    server = subprocess.Popen(
        [gunicorn, "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        + ["--threads", "4", "--chdir", str(ROOT)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_until_served(base, server)
        script = ["set -eo pipefail"]
        for number, block in enumerate(runnable):
            code = block.code.replace("http://127.0.0.1:8000", base)
            script += [f"echo '@@block {number}'", code, f"echo '@@done {number}'"]
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    outputs = dict(re.findall(r"@@block (\d+)\n(.*?)(?=@@done \1\n)", done.stdout, re.S))
    for number, block in enumerate(runnable):
        where = f"README.md line {block.line}"
        assert str(number) in outputs, (
            f"{where} failed (exit {done.returncode}):\n{block.code}\n--- stdout\n"
            f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        for text in block.expect:
            assert text in outputs[str(number)], f"{where}: expected {text!r} in its output"
    assert done.returncode == 0, done.stderr[-3000:]
