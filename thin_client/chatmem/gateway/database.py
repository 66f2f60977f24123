"""One ``api`` call per request, on an async pool of autocommit connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import psycopg
from fastapi import Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from psycopg.rows import AsyncRowFactory
from psycopg_pool import AsyncConnectionPool

from chatmem.api_errors import NotAuthorized, from_psycopg
from chatmem.calls import Expr, api_query, as_guest, user_from_token

T = TypeVar("T")


class HotFirstPool(AsyncConnectionPool[Any]):
    """psycopg's async pool, handing out the connection returned last first (a stack, not a queue).

    psycopg_pool keeps its idle connections in a queue: ``getconn`` takes the
    one idle longest, ``putconn`` puts it back at the end.  After a burst has
    opened all ``max_size`` connections, one request at a time therefore
    walks through every one of them in turn: each call lands on another
    PostgreSQL backend whose caches have gone cold since its last turn (and,
    on a busy machine, another process to wake).  Taking the most recently
    returned connection instead keeps the fewest backends hot, as node-postgres'
    pool and SQLAlchemy's ``pool_use_lifo`` do; under load every connection is
    busy and nothing changes.  The connections nobody takes sink to the far
    end, where the pool's ``max_idle`` shrinking closes them first.

    Only the choice changes: the pool's lock, its waiting queue, timeouts,
    growing, checks of returned connections and replacing broken ones stay
    psycopg_pool's own (tests/test_gateway_pool.py).
    """

    async def _get_ready_connection(self, timeout: float | None) -> Any:
        # Called under the pool's lock.  Turn the most recently returned
        # connection (appended at the right) to the left, where psycopg_pool
        # takes the next one from; the others keep their order.
        if len(self._pool) > 1:
            self._pool.rotate(1)
        return await super()._get_ready_connection(timeout)


class Api:
    """Runs one ``SELECT * FROM api.f(...)`` and returns its rows, with our errors translated."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def rows(
        self,
        function: str,
        row_factory: AsyncRowFactory[T],
        required: Mapping[str, object],
        optional: Mapping[str, object] | None = None,
    ) -> list[T]:
        query, params = api_query(function, required, optional)
        try:
            # getconn/putconn rather than pool.connection(): the same checkout
            # and return (putconn replaces a broken connection and rolls back
            # one left in a transaction), without the context manager's
            # commit of an autocommit connection: 10 us less per call, about
            # 15% of a short query's client CPU (bench/README.md, 8).
            conn = await self.pool.getconn()
            try:
                async with conn.cursor(row_factory=row_factory) as cur:
                    await cur.execute(query, params)
                    return await cur.fetchall()
            finally:
                await self.pool.putconn(conn)
        except psycopg.Error as exc:
            mapped = from_psycopg(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def one(
        self,
        function: str,
        row_factory: AsyncRowFactory[T],
        required: Mapping[str, object],
        optional: Mapping[str, object] | None = None,
    ) -> T:
        return (await self.rows(function, row_factory, required, optional))[0]


def caller(token: str | None, anonymous_user_id: str | None) -> Expr | None:
    """``p_user_id`` for a request: the Bearer token's user (checked in the same
    statement), else the guest named by X-Anonymous-User-Id (never a registered
    account: a header proves nothing), else no identity."""
    if token is not None:
        return user_from_token(token)
    return None if anonymous_user_id is None else as_guest(anonymous_user_id)


def bearer(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without the header (or an empty one).

    Any other form (no ``Bearer``, no token) is refused with 401 rather than
    ignored: a client that sends a token means to act as its user, and must
    not be answered as a guest.  An empty header carries nothing, as a page
    sends when nobody is signed in (``Authorization: ''``), and counts as none.
    The header's value is never echoed.
    """
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return token
    raise NotAuthorized(
        "28000", "Authorization: expected 'Bearer <access token>'",
        "Send Authorization: Bearer <token> with the token answered by POST /api/auth/login, "
        "or no Authorization header to act as the guest of X-Anonymous-User-Id.")


class BearerToken(SecurityBase):
    """A route's ``Authorization: Bearer <token>``: the token, or None; 401 for any other form.

    Declared in the OpenAPI document as the ``bearer`` security scheme (optional).
    """

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="An access token from login, register or refresh.")
        self.scheme_name = "bearer"

    async def __call__(self, request: Request) -> str | None:
        return bearer(request.headers.get("authorization"))
