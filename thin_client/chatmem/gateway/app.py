"""The ASGI application: a pool, the routes, the error envelope, the page."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool

from chatmem import __version__
from chatmem.gateway import errors
from chatmem.gateway.database import Api
from chatmem.gateway.limits import BodyLimit
from chatmem.gateway.routes import router

STATIC = files("chatmem.gateway") / "static"


def create_app(conninfo: str, *, pool_size: int = 10, prepare_threshold: int | None = 5) -> FastAPI:
    """The gateway on ``conninfo``; ``prepare_threshold=None`` for transaction-mode poolers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            conninfo, min_size=1, max_size=pool_size, open=False, name="chatmem-gateway",
            kwargs={"autocommit": True, "prepare_threshold": prepare_threshold,
                    "application_name": "chatmem-gateway"},
        )
        await pool.open()
        app.state.api = Api(pool)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="chatmem gateway",
        version=__version__,
        description="The older system's HTTP endpoints over chatmem's SQL API. Every answer is "
                    '{"success": true, "data": ...} or {"success": false, "error": {"code", "message", "hint"}}.',
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    errors.install(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=int(os.environ.get("CHATMEM_MAX_BODY_BYTES", 1 << 20)))
    origins = [o.strip() for o in os.environ.get("CHATMEM_CORS_ORIGINS", "").split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Anonymous-User-Id"])
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    return app
