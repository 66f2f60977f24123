"""How a call of the SQL API is written: ``SELECT * FROM api.f(p_x => $1, ...)``.

Shared by the synchronous client and the HTTP gateway, so both send the same
statement for the same call.  Arguments are passed by name, and only those
given: the SQL function's own defaults stay the single source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Expr:
    """An argument computed by SQL in the same statement, e.g. ``api.require_user($1)::text``."""

    template: sql.Composable
    params: list[object] = field(default_factory=list)


def user_from_token(token: str) -> Expr:
    """The token's user id as ``p_user_id``: 28000 for a bad token, in the same statement."""
    return Expr(sql.SQL("api.require_user({})::text").format(sql.Placeholder()), [token])


def as_guest(anonymous_user_id: str) -> Expr:
    """A client-supplied guest id as ``p_user_id``: 28000 if it names a registered account."""
    return Expr(sql.SQL("api.require_guest({})").format(sql.Placeholder()), [anonymous_user_id])


def json_arg(value: Mapping[str, Any] | None) -> Jsonb | None:
    """A JSON-object argument as jsonb; None stays None, so the function's default applies."""
    return None if value is None else Jsonb(value)


def api_query(
    function: str, required: Mapping[str, object], optional: Mapping[str, object] | None = None
) -> tuple[sql.Composed, list[object]]:
    """The statement and its parameters.

    ``required`` arguments are always passed (None as NULL); ``optional`` ones
    only when not None, so the function's default applies.
    """
    args = dict(required)
    args.update({k: v for k, v in (optional or {}).items() if v is not None})
    parts: list[sql.Composable] = []
    params: list[object] = []
    for name, value in args.items():
        if isinstance(value, Expr):
            parts.append(sql.SQL("{} => {}").format(sql.Identifier(f"p_{name}"), value.template))
            params.extend(value.params)
        else:
            parts.append(sql.SQL("{} => {}").format(sql.Identifier(f"p_{name}"), sql.Placeholder()))
            params.append(value)
    query = sql.SQL("SELECT * FROM {}({})").format(sql.Identifier("api", function), sql.SQL(", ").join(parts))
    return query, params
