"""First use just works (issue 11, item 6): on a machine with no cluster yet, the first
command that needs the database creates the embedded PostgreSQL, starts it, creates and
migrates the database, and says so on one line; later commands say nothing of it."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CHATMEM = str(Path(sys.executable).parent / "chatmem")


@pytest.fixture
def empty_machine(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a machine where chatmem never ran: an empty data folder of its own
    (and its own socket), no DATABASE_URL, a state file of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATMEM_", "DATABASE_URL", "PG"))}
    env.update(CHATMEM_DATA_DIR=str(tmp_path / "pgdata"), CHATMEM_PG_PORT=str(random.randint(55000, 59000)),
               CHATMEM_STATE=str(tmp_path / "state.json"))
    try:
        yield env
    finally:
        subprocess.run([CHATMEM, "db", "down"], env=env, capture_output=True, timeout=60)
        data = subprocess.run(
            [sys.executable, "-c", "from chatmem import embedded; print(embedded.configured().data_dir)"],
            env=env, capture_output=True, text=True).stdout.strip()
        if data and "chatmem" in data:
            shutil.rmtree(Path(data).parent if Path(data).name == "pgdata" else data, ignore_errors=True)


def test_the_first_command_sets_up_the_embedded_database_and_says_so_on_one_line(
    empty_machine: dict[str, str],
) -> None:
    first = subprocess.run([CHATMEM, "session", "new", "--json"], env=empty_machine,
                           capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["session_id"]
    setup = [line for line in first.stderr.splitlines() if line.startswith("chatmem: ")]
    assert len(setup) == 1, first.stderr
    for done in ("created the embedded PostgreSQL in", "started it", "created database chatmem", "migrated it"):
        assert done in setup[0], setup[0]

    again = subprocess.run([CHATMEM, "sessions", "--json"], env=empty_machine,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "chatmem: " not in again.stderr, "set up once only"
    assert len(json.loads(again.stdout)) == 1


def test_serve_on_a_new_machine_sets_up_the_embedded_database_then_serves(
    empty_machine: dict[str, str],
) -> None:
    """``chatmem serve`` before ``db up``: it creates, starts and migrates the cluster first
    (one line), and then answers, instead of starting and answering 503 for 30 s."""
    import socket
    import time
    import uuid

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = subprocess.Popen([CHATMEM, "serve", "--port", str(port), "--workers", "1"], env=empty_machine,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert served.poll() is None, served.communicate()[1]
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/api/chat/session",
                                    json={"userId": str(uuid.uuid4())}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "chatmem serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 201, answer.text  # the first request already works
    finally:
        served.terminate()
        stderr = served.communicate(timeout=30)[1]
    setup = [line for line in stderr.splitlines() if line.startswith("chatmem: ")]
    assert len(setup) == 1, stderr
    for done in ("created the embedded PostgreSQL in", "started it", "created database chatmem", "migrated it"):
        assert done in setup[0], setup[0]
