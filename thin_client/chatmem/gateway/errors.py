"""Every failure as the older system's envelope; never a stack trace.

The SQLSTATE -> HTTP status (and Retry-After) table is chatmem.api_errors.CODES,
the same one the client turns into exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from chatmem.api_errors import ChatmemError

log = logging.getLogger("chatmem.gateway")


def envelope(status: int, code: str, message: str, hint: str | None = None,
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message, "hint": hint}}, status_code=status,
        headers=headers,
    )


async def on_chatmem_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChatmemError)
    retry_after = exc.retry_after
    return envelope(exc.http_status, exc.sqlstate, exc.message, exc.hint,
                    None if retry_after is None else {"Retry-After": str(retry_after)})


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return envelope(400, "bad_json", "the request body is not valid JSON",
                            "Send a JSON object with Content-Type: application/json.")
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return envelope(400, "bad_request", "; ".join(problems),
                    "Check the field names and types against /openapi.json.")


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    # Its headers too (a 405's Allow).
    return envelope(exc.status_code, f"http_{exc.status_code}", str(exc.detail), headers=exc.headers)


async def on_database_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.Error)
    # Input PostgreSQL itself refuses (class 22: a NUL byte, bad encoding):
    # the caller's fault, and the message says nothing secret.
    if isinstance(exc, psycopg.DataError) or (exc.sqlstate or "").startswith("22"):
        return envelope(400, exc.sqlstate or "22000", (exc.diag.message_primary or str(exc)).strip(),
                        "Remove NUL bytes and invalid characters from the text.")
    log.error("database error %s: %s", exc.sqlstate, exc.diag.message_primary or type(exc).__name__)
    return envelope(503 if isinstance(exc, psycopg.OperationalError) else 500, exc.sqlstate or "internal",
                    "the database could not answer this request", "Try again later.")


async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    # A bug: the envelope still, and one log line naming the type (never the
    # request, which may carry a password).
    log.error("unexpected %s in the gateway", type(exc).__name__)
    return envelope(500, "internal", "the gateway failed on this request", "Try again; report it if it persists.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ChatmemError, on_chatmem_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(psycopg.Error, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
