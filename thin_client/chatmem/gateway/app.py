"""The ASGI application: a pool, the routes, the error envelope, the page."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers

from chatmem import __version__
from chatmem.gateway import account_routes, allowance, document, errors
from chatmem.gateway.conversation_routes import router as conversation_router
from chatmem.gateway.database import Api, HotFirstPool
from chatmem.gateway.fast_path import FastPath, FastPathStats
from chatmem.gateway.limits import BodyLimit
from chatmem.gateway.oidc import Provider
from chatmem.gateway.ratelimit import AuthRateLimit, ClientAddress, SlidingWindow
from chatmem.gateway.routes import router

STATIC = files("chatmem.gateway") / "static"


def create_app(
    conninfo: str, *, pool_size: int = 10, prepare_threshold: int | None = 5,
    auth_rate_limit: int | None = None, trusted_proxies: Iterable[str] | None = None,
    broker_conninfo: str | None = None, oidc_providers: str | Sequence[Provider] | None = None,
    reset_mail_hook: str | None = None, fast_path: bool = True,
) -> FastAPI:
    """The gateway on ``conninfo``; ``prepare_threshold=None`` for transaction-mode poolers.

    ``auth_rate_limit``: requests a minute per client address to register,
    login and refresh together, 0 for no limit (default: CHATMEM_AUTH_RATE_LIMIT,
    else 30).  ``trusted_proxies``: the IPs and CIDRs (and ``unix``) whose
    X-Forwarded-For is believed (default: CHATMEM_TRUSTED_PROXIES, comma
    separated, else none).  See chatmem.gateway.ratelimit.

    Accounts (chatmem.gateway.account_routes): ``broker_conninfo`` connects as
    a member of chatmem_identity_broker for POST /api/auth/oidc (default:
    CHATMEM_BROKER_DATABASE_URL, else none: the route answers 503);
    ``oidc_providers`` the accepted identity providers (default:
    CHATMEM_OIDC_PROVIDERS, see chatmem.gateway.oidc); ``reset_mail_hook``
    where reset tokens go (default: CHATMEM_RESET_MAIL_HOOK, see
    chatmem.gateway.mailhook).

    ``fast_path``: the chat routes answered by chatmem.gateway.fast_path
    (the same answers, without FastAPI's per-request layers); False serves
    them with FastAPI's routes alone, the reference the fast path is tested against.
    """
    if auth_rate_limit is None:
        auth_rate_limit = _env_int("CHATMEM_AUTH_RATE_LIMIT", 30)
    if auth_rate_limit < 0:
        raise ValueError(f"auth_rate_limit must be 0 (no limit) or more, not {auth_rate_limit}")
    if trusted_proxies is None:
        trusted_proxies = os.environ.get("CHATMEM_TRUSTED_PROXIES", "")
    if isinstance(trusted_proxies, str):
        trusted_proxies = trusted_proxies.split(",")
    client_address = ClientAddress(trusted_proxies)  # a typo fails here, at startup

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = HotFirstPool(
            conninfo, min_size=1, max_size=pool_size, open=False, name="chatmem-gateway",
            kwargs={"autocommit": True, "prepare_threshold": prepare_threshold,
                    "application_name": "chatmem-gateway"},
        )
        await pool.open()
        app.state.api = Api(pool)
        await account_routes.open_broker(app)
        try:
            yield
        finally:
            await account_routes.close_broker(app)
            await pool.close()

    app = FastAPI(
        title="chatmem gateway",
        version=__version__,
        description=document.DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    errors.install(app)
    app.include_router(router)
    app.include_router(account_routes.router)
    account_routes.configure(
        app, broker_conninfo=broker_conninfo or os.environ.get("CHATMEM_BROKER_DATABASE_URL") or None,
        oidc_providers=oidc_providers, reset_mail_hook=reset_mail_hook, prepare_threshold=prepare_threshold)
    app.include_router(allowance.router)
    app.include_router(conversation_router)
    document.install(app)
    # Middleware added last runs first: CORS, then the body limit, then the
    # auth rate limit, so a 429 carries the CORS headers and costs no body.
    # The fast path, added first, runs last: inside all three.
    if fast_path:
        app.state.fast_path = FastPathStats()
        app.add_middleware(FastPath, routes=router.routes, stats=app.state.fast_path)
    if auth_rate_limit:
        app.state.auth_rate_limiter = SlidingWindow(auth_rate_limit)
        app.add_middleware(AuthRateLimit, limiter=app.state.auth_rate_limiter, client_address=client_address)
    app.add_middleware(BodyLimit, max_bytes=int(os.environ.get("CHATMEM_MAX_BODY_BYTES", 1 << 20)))
    origins = [o.strip() for o in os.environ.get("CHATMEM_CORS_ORIGINS", "").split(",") if o.strip()]
    if origins:
        # Retry-After is not a CORS-safelisted response header: a page reads it only if exposed.
        app.add_middleware(EnvelopedCORS, allow_origins=origins, allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Anonymous-User-Id"],
                           expose_headers=["Retry-After", "Content-Disposition"])
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    return app


class EnvelopedCORS(CORSMiddleware):
    """CORS whose refused preflight (an origin, method or header not allowed) is the envelope too."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode()
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return errors.envelope(400, "bad_request", refused[:1].lower() + refused[1:],
                               "Serve the page from an origin listed in CHATMEM_CORS_ORIGINS, "
                               "with GET, POST, PATCH or DELETE and only the documented headers.", headers)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
