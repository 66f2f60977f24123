"""Plain helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

Conn = psycopg.Connection[tuple[Any, ...]]


def tag() -> str:
    """A short random tag that keeps one test's ids and emails apart from every other's."""
    return uuid.uuid4().hex[:10]


def connect(url: str) -> Conn:
    return psycopg.connect(url, autocommit=True)


def change_settings(conn: Conn, **columns: object) -> dict[str, object]:
    """Set columns of the one chatmem_settings row; return their values before.

    A value may be SQL, such as ``psycopg.sql.DEFAULT``.
    """
    names = list(columns)
    old = conn.execute(
        sql.SQL("SELECT {} FROM public.chatmem_settings").format(
            sql.SQL(", ").join(map(sql.Identifier, names))
        )
    ).fetchone()
    assert old is not None, "chatmem_settings has no row"
    assignments: list[sql.Composable] = []
    params: list[object] = []
    for name, value in columns.items():
        if isinstance(value, sql.Composable):
            assignments.append(sql.SQL("{} = {}").format(sql.Identifier(name), value))
        else:
            assignments.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(value)
    conn.execute(
        sql.SQL("UPDATE public.chatmem_settings SET {}").format(sql.SQL(", ").join(assignments)),
        params,
    )
    return dict(zip(names, old, strict=True))


@contextmanager
def settings_changed(url: str, **columns: object) -> Iterator[None]:
    """chatmem_settings with ``columns`` set, for the ``with`` block; the old values after."""
    with connect(url) as conn:
        old = change_settings(conn, **columns)
        try:
            yield
        finally:
            change_settings(conn, **old)


def run_threads(count: int, target: Callable[[int], None], timeout: float = 120) -> None:
    """Run ``target(0..count-1)`` in threads and wait for all; re-raise the first failure."""
    failures: list[BaseException] = []

    def wrapped(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=wrapped, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
        assert not t.is_alive(), "a worker hung (deadlock?)"
    if failures:
        raise failures[0]


def guest_sessions(
    conn: Conn, guest: str, prefix: str, count: int, message: str | None = None, qa: bool = False
) -> list[str]:
    """``count`` sessions ``prefix-0``... of ``guest``, each with one message
    (``message``, or ``hello <session id>``) and, with ``qa``, one Q&A pair."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    for sid in ids:
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
        conn.execute(
            "SELECT api.add_message(%s, %s, 'user', %s)",
            [sid, guest, f"hello {sid}" if message is None else message],
        )
        if qa:
            conn.execute("SELECT api.add_qa_pair(%s, %s, 'q', 'a')", [sid, guest])
    return ids


@dataclass
class World:
    """Two users, two guests and their sessions, for ownership tests (see :func:`make_world`)."""

    alice: str  # user ids
    bob: str
    alice_email: str
    alice_token: str
    bob_token: str
    ga: str  # guest ids
    gb: str
    sa: str  # alice's session
    sga: str  # guest ga's session
    so: str  # an open session (no owner)

    def intruders(self) -> list[tuple[str, str | None]]:
        """(session, caller) pairs where the caller is not the session's owner."""
        return [(self.sa, self.bob), (self.sa, self.ga), (self.sa, None), (self.sa, "anonymous"),
                (self.sga, self.gb), (self.sga, self.alice), (self.sga, self.bob), (self.sga, None)]


def make_world(conn: Conn, prefix: str, password: str) -> World:
    """Register alice and bob, open alice's, guest ga's and an open session; alice's and
    ga's each get a private message and a Q&A pair.  Names carry ``prefix`` and a fresh tag."""
    run = tag()

    def register(name: str) -> tuple[str, str]:
        row = conn.execute("SELECT user_id, token FROM api.register_user(%s, %s, %s)",
                           [name, f"{prefix}-{name}-{run}@example.test", password]).fetchone()
        assert row is not None
        return str(row[0]), row[1]

    alice, alice_token = register("alice")
    bob, bob_token = register("bob")
    w = World(alice, bob, f"{prefix}-alice-{run}@example.test", alice_token, bob_token,
              f"{prefix}-ga-{run}", f"{prefix}-gb-{run}", f"{prefix}-sa-{run}", f"{prefix}-sga-{run}",
              f"{prefix}-so-{run}")
    for sid, owner in ((w.sa, w.alice), (w.sga, w.ga), (w.so, None)):
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, owner])
    for sid, owner in ((w.sa, w.alice), (w.sga, w.ga)):
        conn.execute("SELECT api.add_message(%s, %s, 'user', 'private')", [sid, owner])
        conn.execute("SELECT api.add_qa_pair(%s, %s, 'q', 'a')", [sid, owner])
    return w
