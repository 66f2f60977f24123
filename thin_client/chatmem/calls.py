"""How a call of the SQL API is written: ``SELECT * FROM api.f(p_x => $1, ...)``.

Shared by the synchronous client and the HTTP gateway, so both send the same
statement for the same call.  Arguments are passed by name, and only those
given: the SQL function's own defaults stay the single source of truth.
"""

from __future__ import annotations

import functools
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


_REQUIRE_USER = sql.SQL("api.require_user({})::text").format(sql.Placeholder())
_REQUIRE_GUEST = sql.SQL("api.require_guest({})").format(sql.Placeholder())
# The templates whose statements api_query may keep: these objects live as
# long as the module, so their ids name them (another template is never cached).
_KNOWN_TEMPLATES = {id(_REQUIRE_USER): _REQUIRE_USER, id(_REQUIRE_GUEST): _REQUIRE_GUEST}


def user_from_token(token: str) -> Expr:
    """The token's user id as ``p_user_id``: 28000 for a bad token, in the same statement."""
    return Expr(_REQUIRE_USER, [token])


def as_guest(anonymous_user_id: str) -> Expr:
    """A client-supplied guest id as ``p_user_id``: 28000 if it names a registered account."""
    return Expr(_REQUIRE_GUEST, [anonymous_user_id])


def json_arg(value: Mapping[str, Any] | None) -> Jsonb | None:
    """A JSON-object argument as jsonb; None stays None, so the function's default applies."""
    return None if value is None else Jsonb(value)


def api_query(
    function: str, required: Mapping[str, object], optional: Mapping[str, object] | None = None
) -> tuple[bytes | sql.Composed, list[object]]:
    """The statement and its parameters.

    ``required`` arguments are always passed (None as NULL); ``optional`` ones
    only when not None, so the function's default applies.

    The statement depends only on the function, the arguments' names and
    which are computed by SQL (:class:`Expr`): it is composed once per such
    shape and kept, as bytes (composing it took more CPU than the gateway's
    whole route; bench/README.md, 7).
    """
    args = dict(required)
    args.update({k: v for k, v in (optional or {}).items() if v is not None})
    shape: list[tuple[str, int]] = []
    params: list[object] = []
    for name, value in args.items():
        if isinstance(value, Expr):
            if id(value.template) not in _KNOWN_TEMPLATES:
                return _compose(function, args), _params(args)
            shape.append((name, id(value.template)))
            params.extend(value.params)
        else:
            shape.append((name, 0))
            params.append(value)
    return _statement(function, tuple(shape)), params


@functools.lru_cache(maxsize=1024)
def _statement(function: str, shape: tuple[tuple[str, int], ...]) -> bytes:
    args = {name: Expr(_KNOWN_TEMPLATES[template]) if template else None for name, template in shape}
    return _compose(function, args).as_bytes(None)


def _compose(function: str, args: Mapping[str, object]) -> sql.Composed:
    parts: list[sql.Composable] = []
    for name, value in args.items():
        template = value.template if isinstance(value, Expr) else sql.Placeholder()
        parts.append(sql.SQL("{} => {}").format(sql.Identifier(f"p_{name}"), template))
    return sql.SQL("SELECT * FROM {}({})").format(sql.Identifier("api", function), sql.SQL(", ").join(parts))


def _params(args: Mapping[str, object]) -> list[object]:
    params: list[object] = []
    for value in args.values():
        if isinstance(value, Expr):
            params.extend(value.params)
        else:
            params.append(value)
    return params
