"""Shared fixtures: every test talks to a real PostgreSQL.

The suite uses ``CHATMEM_TEST_DATABASE_URL`` when ``make test`` provides it;
run on its own, it starts the embedded cluster (or uses ``DATABASE_URL``'s
server) and migrates a test database itself.  It never skips for want of one.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from chatmem import embedded, migrate, target
from helpers import Conn, connect, settings_changed

TEST_DATABASE = "chatmem_test"
# The test login roles' password: ignored by the embedded cluster's trust
# authentication, needed by a server that asks for one.  Roles are
# cluster-wide, so every run on a server shares them and their password.
TEST_ROLE_PASSWORD = "chatmem-test-role"


@pytest.fixture(scope="session")
def admin_url() -> str:
    """A superuser-level URL of the migrated test database."""
    url = os.environ.get("CHATMEM_TEST_DATABASE_URL")
    if url:
        return url
    # Run on its own (not from `make test`): set up what make test would.
    target.ensure_database(TEST_DATABASE)
    url = target.database_url(database=TEST_DATABASE)
    migrate.migrate(url)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f",
                    str(Path(__file__).parent.parent / "pgtap_tests" / "setup" / "install.sql")],
                   check=True, capture_output=True)
    return url


def login_role_url(admin_url: str, name: str, groups: tuple[str, ...]) -> str:
    """``admin_url`` as LOGIN role ``name``, a member of ``groups`` (made if missing, as chatmem makes its own)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        embedded.ensure_login_role(conn, name, groups)
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(TEST_ROLE_PASSWORD)))
    params = conninfo_to_dict(admin_url)
    params.update(user=name, password=TEST_ROLE_PASSWORD)
    return target.dict_to_url(params)


@pytest.fixture(scope="session")
def app_url(admin_url: str) -> str:
    """The test database as a login role in chatmem_app only: what a web backend should use."""
    return login_role_url(admin_url, "chatmem_test_app", ("chatmem_app",))


@pytest.fixture(scope="session")
def assistant_url(admin_url: str) -> str:
    """The test database as a login role in chatmem_app and chatmem_assistant: the model's backend."""
    return login_role_url(admin_url, "chatmem_test_assistant", ("chatmem_app", "chatmem_assistant"))


@pytest.fixture(scope="session")
def embedded_env(admin_url: str) -> dict[str, str]:
    """Environment that makes chatmem, with no DATABASE_URL, use the test database as its embedded cluster's.

    Skips when the test server is not a chatmem embedded cluster (e.g. a
    DATABASE_URL server): its login roles exist only there.
    """
    params = conninfo_to_dict(admin_url)
    host = str(params.get("host") or "")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        ours = conn.execute(
            "SELECT current_setting('data_directory'), EXISTS (SELECT 1 FROM pg_file_settings"
            " WHERE sourcefile LIKE '%/chatmem.conf')").fetchone()
    if not host.startswith("/") or ours is None or not ours[1]:
        pytest.skip("the test server is not chatmem's embedded cluster")
    return {"CHATMEM_DATA_DIR": str(ours[0]), "CHATMEM_PG_PORT": str(params.get("port") or 5432),
            "CHATMEM_SOCKET_DIR": host, "CHATMEM_DATABASE": str(params["dbname"])}


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def scratch_db(admin_url: str) -> Iterator[str]:
    """An empty database of its own, dropped afterwards: for tests of migrations."""
    name = f"chatmem_scratch_{uuid.uuid4().hex[:12]}"
    embedded.create_database(admin_url, name)
    try:
        yield target.with_database(admin_url, name)
    finally:
        drop_database(admin_url, name)


@pytest.fixture
def admin(admin_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit superuser connection to the test database."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def fast_bcrypt(admin_url: str) -> Iterator[None]:
    """bcrypt at cost 4 for the module that asks (its old cost restored afterwards).

    A test of the default cost sets ``bcrypt_cost = DEFAULT`` for itself.
    """
    with settings_changed(admin_url, bcrypt_cost=4):
        yield


@pytest.fixture(scope="module")
def conn(admin_url: str, fast_bcrypt: None) -> Iterator[Conn]:
    """An autocommit superuser connection shared by a module's tests, with bcrypt at cost 4."""
    with connect(admin_url) as c:
        yield c
