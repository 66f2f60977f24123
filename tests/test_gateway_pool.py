"""The gateway's connection pool (chatmem.gateway.database.HotFirstPool): the connection returned
last is handed out first, nothing else of psycopg_pool changes, and a lost connection is a 503
the gateway recovers from (issue 11, item 1)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from chatmem.gateway.database import HotFirstPool
from gateway_server import running_gateway
from helpers import run_threads

POOL_SIZE = 3


async def _backends_one_at_a_time(pool: AsyncConnectionPool[Any], calls: int) -> list[int]:
    pids = []
    for _ in range(calls):
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            assert row is not None
            pids.append(row[0])
    return pids


def _one_at_a_time(pool_class: type[AsyncConnectionPool[Any]], url: str) -> list[int]:
    async def main() -> list[int]:
        async with pool_class(url, min_size=4, max_size=4, open=False, kwargs={"autocommit": True}) as pool:
            await pool.wait(timeout=30)
            return await _backends_one_at_a_time(pool, 12)

    return asyncio.run(main())


def test_one_request_at_a_time_keeps_using_the_connection_returned_last(app_url: str) -> None:
    pids = _one_at_a_time(HotFirstPool, app_url)
    assert len(set(pids)) == 1, pids
    # The control: psycopg_pool's own order walks through all four backends in turn.
    control = _one_at_a_time(AsyncConnectionPool, app_url)
    assert len(set(control)) == 4, control


def test_concurrent_checkouts_never_share_a_connection_and_all_come_back(app_url: str) -> None:
    """Twelve tasks released together on a pool of three, three rounds: a connection is never in
    two hands at once, every task gets one (waiting in psycopg_pool's queue), all three return."""

    async def main() -> None:
        async with HotFirstPool(app_url, min_size=1, max_size=POOL_SIZE, open=False,
                                kwargs={"autocommit": True}) as pool:
            in_use: set[int] = set()
            served: list[int] = []

            async def task(barrier: asyncio.Barrier) -> None:
                await barrier.wait()
                async with pool.connection() as conn:
                    assert id(conn) not in in_use, "a connection was handed out twice"
                    in_use.add(id(conn))
                    row = await (await conn.execute("SELECT pg_backend_pid(), pg_sleep(0.005)")).fetchone()
                    assert row is not None
                    served.append(row[0])
                    in_use.discard(id(conn))

            for _ in range(3):
                barrier = asyncio.Barrier(12)
                await asyncio.wait_for(asyncio.gather(*(task(barrier) for _ in range(12))), timeout=60)
            assert len(served) == 36
            assert len(set(served)) <= POOL_SIZE
            stats = pool.get_stats()
            assert stats["pool_available"] == stats["pool_size"] <= POOL_SIZE

    asyncio.run(main())


def test_threads_released_together_all_get_their_session_over_http(app_url: str, admin_url: str) -> None:
    """Eight threads on their own HTTP connections, released together by a barrier, on a pool of
    three, three rounds: every request is served, and the database holds every session answered."""
    guests = [str(uuid.uuid4()) for _ in range(24)]
    sessions: list[str] = []
    try:
        with running_gateway(app_url, pool_size=POOL_SIZE) as base:
            for round_ in range(3):
                barrier = threading.Barrier(8)
                statuses: list[int] = []

                def post(n: int, round_: int = round_, barrier: threading.Barrier = barrier,
                         statuses: list[int] = statuses) -> None:
                    with httpx.Client(base_url=base, timeout=60) as client:
                        barrier.wait(timeout=30)
                        response = client.post("/api/chat/session", json={"userId": guests[round_ * 8 + n]})
                        statuses.append(response.status_code)
                        if response.status_code == 201:
                            sessions.append(response.json()["data"]["sessionId"])

                run_threads(8, post)
                assert statuses == [201] * 8
        with psycopg.connect(admin_url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(DISTINCT metadata->>'anonymousUserId') FROM public.conversation_sessions "
                "WHERE session_id = ANY(%s)", [sessions]).fetchone()
        assert len(set(sessions)) == 24
        assert row is not None and row[0] == 24
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for guest in guests:
                admin.execute("SELECT api.delete_guest_data(%s)", [guest])


def _terminate_gateway_backends(admin_url: str, database: str, since: object) -> int:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name = 'chatmem-gateway' AND backend_start >= %s AND pid <> pg_backend_pid()",
            [database, since]).fetchall()
    return len(rows)


def test_a_terminated_backend_is_a_503_and_the_gateway_recovers(app_url: str, admin_url: str) -> None:
    """pg_terminate_backend on every connection of the gateway's pool (a restart, a failover, an
    idle-session killer): each request that meets a dead connection answers 503 with the envelope
    and Retry-After; the pool replaces it, and the requests after it are served again."""
    database = psycopg.conninfo.conninfo_to_dict(app_url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        started = admin.execute("SELECT now()").fetchone()
    assert started is not None
    with running_gateway(app_url, pool_size=POOL_SIZE) as base, httpx.Client(base_url=base, timeout=60) as http:
        # Open all three connections: three requests at once.
        barrier = threading.Barrier(POOL_SIZE)

        def open_one(_: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                barrier.wait(timeout=30)
                assert client.post("/api/chat/session", json={"userId": str(uuid.uuid4())}).status_code == 201

        run_threads(POOL_SIZE, open_one)
        assert _terminate_gateway_backends(admin_url, database, started[0]) >= 1

        answers = []
        for _ in range(POOL_SIZE + 20):
            response = http.post("/api/chat/session", json={"userId": str(uuid.uuid4())})
            answers.append(response.status_code)
            if response.status_code == 201:
                break
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["success"] is False
            assert body["error"]["code"] == "unavailable"
            assert response.headers["Retry-After"] == "5"
        # The pool does not probe idle connections: the first request meets a dead one.
        assert answers[0] == 503, answers
        assert answers[-1] == 201, answers
        assert answers.count(503) <= POOL_SIZE, answers
        for _ in range(5):
            assert http.post("/api/chat/session", json={"userId": str(uuid.uuid4())}).status_code == 201
