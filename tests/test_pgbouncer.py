"""Through PgBouncer in transaction pooling mode, as application servers share a database.

A private PgBouncer (bench/pgbouncer.py) is started in front of the test
database for this module.  Through it run: the five scenarios of issue 3
(pgtap_tests/scenarios.sql, with pg_prove), the client's calls, and every
test of tests/test_concurrency.py, imported here so that its ``url`` fixture
resolves to this module's, the PgBouncer one.  Between two transactions of
one client PgBouncer may switch server connections, so nothing may rely on
session state; PgBouncer 1.18 cannot keep protocol-level prepared
statements, so clients here turn psycopg's automatic preparing off.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

import test_concurrency
from chatmem import Client, ForbiddenSession
from helpers import settings_changed

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.pgbouncer import running  # noqa: E402

# Every concurrency test, collected here a second time: its ``url`` is this module's.
for _name in dir(test_concurrency):
    if _name.startswith("test_"):
        globals()[_name] = getattr(test_concurrency, _name)

# Enough server connections that no race in test_concurrency waits on the pool.
POOL_SIZE = 40


@pytest.fixture(scope="module")
def bouncer_url(admin_url: str) -> Iterator[str]:
    """The test database's URL through a PgBouncer of this module's own."""
    database = str(conninfo_to_dict(admin_url)["dbname"])
    with running(admin_url, [database], pool_size=POOL_SIZE) as urls:
        yield urls[database]


@pytest.fixture(scope="module")
def url(admin_url: str, bouncer_url: str) -> Iterator[str]:
    """The URL through PgBouncer, with test_concurrency's settings (bcrypt cost 4, cap 100)."""
    with settings_changed(admin_url, **test_concurrency.SETTINGS):
        yield bouncer_url


def _through(bouncer_url: str, dbname: str | None = None) -> list[str]:
    """psql's (and pg_prove's) options for ``bouncer_url``'s PgBouncer: its database, or ``dbname``."""
    params = conninfo_to_dict(bouncer_url)
    database = str(params["dbname"]) if dbname is None else dbname
    return ["-h", str(params["host"]), "-p", str(params["port"]), "-U", str(params["user"]), "-d", database]


def _unprepared(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


@pytest.fixture(autouse=True)
def _no_prepared_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """The imported concurrency tests connect through test_concurrency.connect: no preparing."""
    monkeypatch.setattr(test_concurrency, "connect", _unprepared)


def test_connections_really_go_through_pgbouncer(bouncer_url: str) -> None:
    params = conninfo_to_dict(bouncer_url)
    # PgBouncer answers on a socket folder of its own, not the server's ...
    assert "chatmem-pgb-" in str(params["host"])
    with _unprepared(bouncer_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # ... and its console lists the pool that connection went through.
    pools = subprocess.run(
        ["psql", "-X", "-A", "-t", *_through(bouncer_url, "pgbouncer"), "-c", "SHOW POOLS"],
        capture_output=True,
        text=True,
    )
    assert pools.returncode == 0, pools.stderr
    assert any(line.split("|")[0] == params["dbname"] for line in pools.stdout.splitlines())


def test_the_five_scenarios_of_issue_3_pass_through_pgbouncer(
    admin_url: str, bouncer_url: str
) -> None:
    setup = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            admin_url,
            "-f",
            str(ROOT / "pgtap_tests" / "setup" / "install.sql"),
        ],
        capture_output=True,
        text=True,
    )
    assert setup.returncode == 0, setup.stderr
    proc = subprocess.run(
        ["pg_prove", *_through(bouncer_url), str(ROOT / "pgtap_tests" / "scenarios.sql")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Result: PASS" in proc.stdout


def test_the_client_works_through_pgbouncer_without_prepared_statements(url: str) -> None:
    guest = str(uuid.uuid4())
    tag = uuid.uuid4().hex[:10]
    with Client(url, min_size=2, max_size=4, prepare_threshold=None) as chat:
        # More calls of one statement than psycopg's default preparing threshold (5).
        for i in range(8):
            s = chat.create_or_get_session(f"pgb-{tag}-{i % 3}", user_id=guest)
            assert s.user_id is None and s.metadata["anonymousUserId"] == guest
        for i in range(3):
            chat.add_message(f"pgb-{tag}-{i}", guest, "user", f"hello {i}")
        reg = chat.register_user(
            "Pooled", f"pgb-{tag}@example.com", "correct horse", anonymous_user_id=guest
        )
        assert reg.migrated_sessions == 3
        assert chat.authenticate(reg.token) == reg.user_id
        assert [m.content for m in chat.get_messages(f"pgb-{tag}-0", str(reg.user_id))] == [
            "hello 0"
        ]
        with pytest.raises(ForbiddenSession):
            chat.create_or_get_session(f"pgb-{tag}-0", user_id=guest)
        assert chat.logout(reg.token) is True
        assert chat.authenticate(reg.token) is None
