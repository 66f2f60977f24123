"""The chat routes without FastAPI's per-request layers: a pure ASGI middleware (issue 11).

``POST /api/chat/session``, ``GET /api/chat/sessions``, and ``POST``/``GET``
``/api/chat/session/{session_id}/messages`` and ``.../qa`` are the requests a
chat page makes all day.  Through FastAPI each one builds a Request, walks
the router, solves the Bearer dependency in AsyncExitStacks and passes three
exception-handling layers: half the gateway's CPU per request, more than the
database call itself (bench/README.md, 7).  This middleware, the innermost
one (inside CORS, the body limit and the auth rate limit), answers those six
method and path pairs itself and hands every other request to FastAPI
untouched: a wrong method on a known path (405 with Allow), a trailing
slash, a HEAD, a ``root_path`` deployment, everything else.

It answers exactly as the FastAPI routes in chatmem.gateway.routes do: those
stay, keep the OpenAPI document, and are the reference (create_app's
``fast_path=False`` serves with them alone; tests/test_fast_path.py compares
the two answer for answer).  Nothing is copied: the route's work is the
same function (routes.new_session, ...), validation uses the route's own
FastAPI fields (so the pydantic models of chatmem.gateway.bodies, the query
limits and every error message are FastAPI's), the Authorization rule is
chatmem.gateway.database.bearer, and failures are chatmem.gateway.errors'
answers.  The order of checks is FastAPI's: the body is read and parsed as
JSON first, then the Authorization header, then the query or the body
validated, then the call.
"""

from __future__ import annotations

import email.message
import functools
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from chatmem.gateway import errors, routes
from chatmem.gateway.database import Api, bearer


@dataclass
class FastPathStats:
    """How many requests the fast path answered (``app.state.fast_path``; tests read it)."""

    served: int = 0


@dataclass(frozen=True)
class _Inputs:
    """One request's parts, as the FastAPI route's parameters hold them."""

    db: Api
    names: dict[str, str]
    token: str | None
    guest: str | None
    session_id: str
    limit: int | None
    before: int | None
    body: Any


_Work = Callable[[_Inputs], Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    route: APIRoute
    work: _Work
    reads_body: bool
    has_query: bool


# The same regular expression Starlette compiles for the routes' path
# ("{session_id}" is [^/]+, matched against the decoded path).
_ONE_SESSION = re.compile(r"^/api/chat/session/(?P<session_id>[^/]+)/(?P<what>messages|qa)$")


def _work() -> dict[str, _Work]:
    """Each route's work by operation id: the functions chatmem.gateway.routes' routes call."""
    return {
        "create_session": lambda i: routes.new_session(i.db, i.names, i.token, i.body, i.guest),
        "list_sessions": lambda i: routes.sessions(i.db, i.token, i.guest),
        "add_message": lambda i: routes.message_added(i.db, i.session_id, i.token, i.guest, i.body),
        "get_messages": lambda i: routes.messages(i.db, i.session_id, i.token, i.guest, i.limit, i.before),
        "add_qa_pair": lambda i: routes.qa_pair_added(i.db, i.session_id, i.token, i.guest, i.body),
        "get_qa_pairs": lambda i: routes.qa_pairs(i.db, i.session_id, i.token, i.guest),
    }


@functools.lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    """FastAPI's test of a Content-Type header (fastapi.routing.get_request_handler)."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _json_content(content_type: str) -> bool:
    return _is_json(content_type) if len(content_type) <= 200 else _is_json.__wrapped__(content_type)


class _BodyUnreadable(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    """The whole body, as Starlette's Request.body() reads it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise _BodyUnreadable


class FastPath:
    """ASGI middleware: the six chat routes answered without FastAPI (see the module's doc)."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], stats: FastPathStats) -> None:
        self.app = app
        self.stats = stats
        work = _work()
        by_id = {r.operation_id: r for r in routes if isinstance(r, APIRoute) and r.operation_id in work}
        missing = set(work) - set(by_id)
        if missing:
            raise ValueError(f"the fast path's routes are not in the app: {sorted(missing)}")
        table: dict[tuple[str, str], _Route] = {}
        for operation_id, route in by_id.items():
            # Only what this module reproduces: one body model, not embedded, strict Content-Type.
            strict = getattr(route.strict_content_type, "value", route.strict_content_type)
            methods = sorted(route.methods or ())
            if getattr(route, "_embed_body_fields", False) or strict is not True or len(methods) != 1:
                raise ValueError(f"the fast path cannot serve {operation_id} as FastAPI does")
            (method,) = methods
            key = route.path.removeprefix("/api/chat/session/{session_id}/")
            table[(method, key)] = _Route(route, work[operation_id], route.body_field is not None,
                                          bool(route.dependant.query_params))
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            session_id = ""
            entry = self.table.get((scope["method"], path))
            if entry is None and path.startswith("/api/chat/session/"):
                match = _ONE_SESSION.match(path)
                if match is not None:
                    session_id = match["session_id"]
                    entry = self.table.get((scope["method"], match["what"]))
            if entry is not None:
                self.stats.served += 1
                response = await self._answer(entry, session_id, scope, receive)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, entry: _Route, session_id: str, scope: Scope, receive: Receive) -> Response:
        names: dict[str, str] = {}
        try:
            authorization = guest = content_type = None
            for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
                if name == b"authorization":
                    authorization = authorization if authorization is not None else value.decode("latin-1")
                elif name == b"x-anonymous-user-id":
                    guest = guest if guest is not None else value.decode("latin-1")
                elif name == b"content-type":
                    content_type = content_type if content_type is not None else value.decode("latin-1")
            body: Any = PydanticUndefined
            if entry.reads_body:
                try:
                    raw = await _read_body(receive)
                except Exception:  # a disconnect, or more than the body limit without Content-Length
                    raise HTTPException(400, "There was an error parsing the body") from None
                if raw:
                    body = raw
                    if content_type and _json_content(content_type):
                        try:
                            body = json.loads(raw)
                        except json.JSONDecodeError:
                            return errors.validation_failed([{"type": "json_invalid"}])
                        except Exception:  # not UTF-8, UTF-16 or UTF-32
                            raise HTTPException(400, "There was an error parsing the body") from None
            token = bearer(authorization)
            limit = before = None
            if entry.has_query:
                values, problems = request_params_to_args(
                    entry.route.dependant.query_params, QueryParams(scope["query_string"]))
                if problems:
                    return errors.validation_failed(problems)
                limit, before = values.get("limit"), values.get("before")
            if entry.reads_body:
                values, problems = await request_body_to_args(
                    entry.route.dependant.body_params, body, embed_body_fields=False)
                if problems:
                    return errors.validation_failed(problems)
                (body,) = values.values()
            db: Api = scope["app"].state.api
            return await entry.work(_Inputs(db, names, token, guest, session_id, limit, before, body))
        except Exception as exc:
            return errors.answer(exc, names)
