"""An experiment, not a product: ``POST /api/chat/session`` as a bare ASGI app, without FastAPI.

The same work as the gateway's route for a guest (one ``api.create_session``
call on the gateway's pool, HotFirstPool, the same envelope) with nothing between
uvicorn and the call: no routing, middleware, dependency solving or
validation.  It bounds what FastAPI costs per request (bench/README.md, 7).
It checks nothing the gateway checks; never serve it.  Run it as the gateway
runs, with the settings ``chatmem serve`` leaves for its workers::

    CHATMEM_GATEWAY_SETTINGS='{"conninfo": "postgresql://...", "pool_size": 5}' \\
    python -c "import uvicorn; uvicorn.run('bench.bare_asgi:make', factory=True, port=5001,
               http='chatmem.gateway.server:NoDelayHTTPProtocol', access_log=False)"
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg.rows import dict_row

from chatmem.gateway.database import HotFirstPool

QUERY = "SELECT * FROM api.create_session(p_user_id => %s, p_context => NULL, p_token => NULL)"
Asgi = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                 Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


def make() -> Asgi:
    settings = json.loads(os.environ["CHATMEM_GATEWAY_SETTINGS"])
    pool = HotFirstPool(settings["conninfo"], min_size=1, max_size=settings["pool_size"], open=False,
                        kwargs={"autocommit": True, "prepare_threshold": 5})

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                  send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await pool.open()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/healthz":
            status, out = 200, b'{"success":true,"data":{"status":"ok"}}'
        else:
            async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(QUERY, [json.loads(body)["userId"]])
                row = await cur.fetchone()
            assert row is not None
            status, out = 201, json.dumps({"success": True, "data": {
                "sessionId": row["session_id"], "userId": None, "createdAt": row["created_at"].isoformat(),
            }}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    return app
