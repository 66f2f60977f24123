"""One ``api`` call per request, on an async pool of autocommit connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory
from psycopg_pool import AsyncConnectionPool

from chatmem.api_errors import from_psycopg
from chatmem.calls import Expr, api_query, as_guest, user_from_token

T = TypeVar("T")


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
            async with self.pool.connection() as conn, conn.cursor(row_factory=row_factory) as cur:
                await cur.execute(query, params)
                return await cur.fetchall()
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


def caller(authorization: str | None, anonymous_user_id: str | None) -> Expr | None:
    """``p_user_id`` for a request: the Bearer token's user (checked in the same
    statement), else the guest named by X-Anonymous-User-Id (never a registered
    account: a header proves nothing), else no identity."""
    token = bearer(authorization)
    if token is not None:
        return user_from_token(token)
    return None if anonymous_user_id is None else as_guest(anonymous_user_id)


def bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
