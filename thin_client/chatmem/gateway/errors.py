"""Every failure as the older system's envelope; never a stack trace.

The SQLSTATE -> HTTP status (and Retry-After) table is chatmem.api_errors.CODES,
the same one the client turns into exceptions; the messages and hints are the
SQL API's, in an HTTP caller's words (chatmem.api_errors.in_words: the JSON
field, header or route instead of the SQL parameter or function).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from chatmem.api_errors import ChatmemError, in_words

log = logging.getLogger("chatmem.gateway")

# Retry-After for a database that cannot be reached (or whose connections are
# all busy): soon enough for a restart, not so soon that clients hammer it.
UNAVAILABLE_RETRY_AFTER = 5


def envelope(status: int, code: str, message: str, hint: str | None = None,
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message, "hint": hint}}, status_code=status,
        headers=headers,
    )


def _route_names(request: Request) -> dict[str, str]:
    """The words this route uses for SQL names that differ by route (see routes.NAMES)."""
    from chatmem.gateway.routes import NAMES

    route = request.scope.get("route")
    names = dict(NAMES.get(getattr(route, "path", ""), {}))
    names.update(getattr(request.state, "names", None) or {})
    return names


async def on_chatmem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChatmemError)
    return chatmem_error(exc, _route_names(request))


def chatmem_error(exc: ChatmemError, names: Mapping[str, str]) -> JSONResponse:
    message, hint = in_words(exc, "http", names)
    retry_after = exc.retry_after
    return envelope(exc.http_status, exc.sqlstate, message, hint,
                    None if retry_after is None else {"Retry-After": str(retry_after)})


def _where(location: tuple[object, ...]) -> str:
    """A validation error's place as a caller knows it: ``limit``, ``X-Anonymous-User-Id``, ``context.key``."""
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_failed(exc.errors())


def validation_failed(errors: Sequence[Any]) -> JSONResponse:
    """FastAPI's validation errors (``RequestValidationError.errors()``) as one 400."""
    problems = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return envelope(400, "bad_json", "the request body is not valid JSON",
                            "Send a JSON object with Content-Type: application/json.")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{_where(tuple(error.get('loc', ())))}: {message}")
    return envelope(400, "bad_request", "; ".join(problems),
                    "Check the field names, types and limits against /openapi.json.")


def _allowed(request: Request) -> list[str]:
    """Every method some route serves on this path (a 405's Allow), not only the first route's."""
    from chatmem.gateway.account_routes import router as account_router
    from chatmem.gateway.conversation_routes import router as conversation_router
    from chatmem.gateway.routes import router

    methods: set[str] = set()
    for route in [*request.app.router.routes, *router.routes, *account_router.routes, *conversation_router.routes]:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route_methods)
    return sorted(methods)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _method_not_allowed(request, exc)
    return http_error(exc)


def _method_not_allowed(request: Request, exc: HTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    allowed = _allowed(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
    headers["Allow"] = ", ".join(allowed)
    hint = f"Use {' or '.join(allowed)} on this path." if allowed else None
    return envelope(exc.status_code, f"http_{exc.status_code}", str(exc.detail), hint, headers=headers or None)


def http_error(exc: HTTPException) -> JSONResponse:
    """An HTTPException other than 405 (whose Allow needs the request: on_http_error)."""
    hint = "See /openapi.json for the routes." if exc.status_code == 404 else None
    headers = dict(exc.headers or {})
    return envelope(exc.status_code, f"http_{exc.status_code}", str(exc.detail), hint, headers=headers or None)


async def on_database_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.Error)
    return database_error(exc)


def database_error(exc: psycopg.Error) -> JSONResponse:
    # Input PostgreSQL itself refuses (class 22: a NUL byte, bad encoding):
    # the caller's fault, and the message says nothing secret.
    if isinstance(exc, psycopg.DataError) or (exc.sqlstate or "").startswith("22"):
        return envelope(400, exc.sqlstate or "22021", (exc.diag.message_primary or str(exc)).strip(),
                        "Remove NUL bytes and invalid characters from the text.")
    log.error("database error %s: %s", exc.sqlstate, exc.diag.message_primary or type(exc).__name__)
    if isinstance(exc, psycopg.OperationalError):
        # Unreachable, shutting down, or every connection busy (PoolTimeout).
        return envelope(503, "unavailable", "the database could not answer this request",
                        "Try again later (Retry-After).", {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})
    return envelope(500, exc.sqlstate or "internal", "the database could not answer this request",
                    "Try again; report it if it persists.")


async def on_bad_text(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnicodeError)
    return bad_text()


def bad_text() -> JSONResponse:
    # Text that cannot be encoded as UTF-8 (a lone surrogate that got past the
    # body's own check): the caller's input, not a failure of the gateway.
    return envelope(400, "bad_request", "the request holds text that is not valid Unicode (a lone surrogate)",
                    "Send text of Unicode characters only, encoded as UTF-8.")


async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    return unexpected(exc)


def unexpected(exc: BaseException) -> JSONResponse:
    # A bug: the envelope still, and one log line naming the type (never the
    # request, which may carry a password).
    log.error("unexpected %s in the gateway", type(exc).__name__)
    return envelope(500, "internal", "the gateway failed on this request", "Try again; report it if it persists.")


def answer(exc: Exception, names: Mapping[str, str]) -> JSONResponse:
    """The answer :func:`install`'s handlers give ``exc``, for a caller without a Request
    (chatmem.gateway.fast_path); ``names`` as request.state.names.  The handler is
    chosen as Starlette chooses it: by the first class of the exception's MRO that has one."""
    for cls in type(exc).__mro__:
        if cls is ChatmemError:
            assert isinstance(exc, ChatmemError)
            return chatmem_error(exc, names)
        if cls is RequestValidationError:
            assert isinstance(exc, RequestValidationError)
            return validation_failed(exc.errors())
        if cls is HTTPException:
            assert isinstance(exc, HTTPException)
            return http_error(exc)
        if cls is psycopg.Error:
            assert isinstance(exc, psycopg.Error)
            return database_error(exc)
        if cls is UnicodeError:
            return bad_text()
    return unexpected(exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ChatmemError, on_chatmem_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(psycopg.Error, on_database_error)
    app.add_exception_handler(UnicodeError, on_bad_text)
    app.add_exception_handler(Exception, on_unexpected)
