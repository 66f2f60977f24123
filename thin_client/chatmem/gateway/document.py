"""The OpenAPI document: typed answers, and every status each route can send.

The success schemas below describe what :mod:`chatmem.gateway.shapes` builds
(they are documentation: a route answers its JSON directly, nothing is
validated twice).  The error statuses of a route are derived, not listed by
hand: from the api functions it calls (:data:`chatmem.api_errors.RAISES`)
through the SQLSTATE table (:data:`chatmem.api_errors.CODES`), plus what the
gateway itself answers (400 for a request that does not match this document,
401 for a malformed Authorization header, 413, the auth routes' 429, 500 and
503).  Validation errors are always 400, never 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from chatmem.api_errors import CODES, RAISES

# -- answers -----------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="A SQLSTATE of the SQL API (docs/errors.md) or one of the gateway's own codes "
                                  "(bad_request, bad_json, body_too_large, too_many_requests, http_404, http_405, "
                                  "internal, unavailable).")
    message: str = Field(description="What was wrong, naming the field, header or query parameter.")
    hint: str | None = Field(description="What to do instead.")


class ErrorAnswer(BaseModel):
    """Every refusal and failure."""

    success: Literal[False]
    error: ErrorDetail


class NewSession(BaseModel):
    sessionId: str = Field(description="session_<epoch ms>_<14 random hex digits>.")
    userId: str | None = Field(description="The owner's id; null for a guest's or nobody's session.")
    createdAt: datetime


class Session(BaseModel):
    sessionId: str
    userId: str | None = Field(description="The owner's id; null for a guest's or nobody's session.")
    metadata: dict[str, Any] = Field(description="A guest's session carries the guest id as anonymousUserId.")
    createdAt: datetime
    updatedAt: datetime


class Created(BaseModel):
    id: int = Field(description="The new row's id.")


class Message(BaseModel):
    id: int
    role: Literal["user", "assistant", "system"]
    content: str
    createdAt: datetime


class QAPair(BaseModel):
    id: int
    question: str
    answer: str
    createdAt: datetime


class NewUser(BaseModel):
    id: str
    name: str
    email: str
    createdAt: datetime


class User(BaseModel):
    id: str
    name: str
    email: str


class Registration(BaseModel):
    user: NewUser
    token: str = Field(description="The access token: send it as Authorization: Bearer <token>.")
    refreshToken: str = Field(description="Exchange it at POST /api/auth/refresh for new tokens.")
    expiresAt: datetime | None = Field(
        default=None, description="When the access token expires; present once the database reports it.")
    migrated: bool = Field(description="Whether any guest session was claimed.")
    migratedSessions: int = Field(description="How many of the guest's sessions the account claimed.")


class Login(BaseModel):
    user: User
    token: str = Field(description="The access token: send it as Authorization: Bearer <token>.")
    refreshToken: str = Field(description="Exchange it at POST /api/auth/refresh for new tokens.")
    expiresAt: datetime = Field(description="When the access token expires.")
    migrated: bool = Field(description="Whether any guest session was claimed.")
    migratedSessions: int = Field(description="How many of the guest's sessions the account claimed.")


class Tokens(BaseModel):
    token: str
    refreshToken: str
    expiresAt: datetime


class LoggedOut(BaseModel):
    loggedOut: bool = Field(description="True when a live token was revoked.")


class Health(BaseModel):
    database: Literal["ok"]
    schemaVersion: str | None = Field(description="The last applied migration.")


class NewSessionAnswer(BaseModel):
    success: Literal[True]
    data: NewSession


class SessionsAnswer(BaseModel):
    success: Literal[True]
    data: list[Session]


class CreatedAnswer(BaseModel):
    success: Literal[True]
    data: Created


class MessagesAnswer(BaseModel):
    success: Literal[True]
    data: list[Message]


class QAPairsAnswer(BaseModel):
    success: Literal[True]
    data: list[QAPair]


class RegistrationAnswer(BaseModel):
    success: Literal[True]
    data: Registration
    message: str


class LoginAnswer(BaseModel):
    success: Literal[True]
    data: Login
    message: str


class TokensAnswer(BaseModel):
    success: Literal[True]
    data: Tokens


class LoggedOutAnswer(BaseModel):
    success: Literal[True]
    data: LoggedOut


class HealthAnswer(BaseModel):
    success: Literal[True]
    data: Health


# -- message allowances (issue 12) ----------------------------------------------------


class Allowance(BaseModel):
    used: int = Field(description="User turns sent in the last 24 hours.")
    allowed: int | None = Field(description="How many the caller may send in 24 hours; null: no limit.")
    resetsAt: datetime | None = Field(
        description="When the oldest counted turn leaves the 24-hour window; null when none is counted.")


class AllowanceAnswer(BaseModel):
    success: Literal[True]
    data: Allowance


# -- statuses ------------------------------------------------------------------------

# What the gateway itself answers, by code.
OWN_CODES = {
    "bad_request": "the request does not match this document (the message names the field, header or "
                   "query parameter)",
    "bad_json": "the body is not JSON",
    "22P02": "text PostgreSQL cannot read as JSON",
    "22P05": "a \\u0000 in JSON text",
    "22021": "a NUL byte or invalid UTF-8 in text",
    "body_too_large": "the body is larger than CHATMEM_MAX_BODY_BYTES (1 MiB by default)",
    "too_many_requests": "more than CHATMEM_AUTH_RATE_LIMIT (30) requests a minute from this address to "
                         "register, login, refresh, reset requests and OIDC sign-ins together",
    "internal": "a failure of the gateway (a bug): report it",
    "unavailable": "the database cannot be reached or its connections are all busy",
}
SQLSTATE_MEANS = {
    "22023": "an invalid argument (the message names it)",
    "23505": "an account with this email exists (in any letter case)",
    "25001": "a programming error: a function ran in the wrong transaction",
    "28000": "a missing, malformed, expired or revoked token, or a guest header naming a registered account",
    "28P01": "wrong email or password",
    "42501": "the session belongs to someone else, or a turn this caller may not write",
    "P0002": "no session with that id",
    "CM001": "too many failed logins for this email: wait for the window to pass",
    "CM002": "this guest opened too many sessions in the last hour",
    "CM003": "the caller sent its allowance of messages in the last 24 hours: Retry-After says when the "
             "next is allowed",
    "CM004": "too many passwords are being hashed at once: retry shortly (nothing was checked)",
}
TITLES = {400: "Invalid request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
          409: "Conflict", 413: "Body too large", 429: "Too many requests", 500: "Internal error",
          503: "Unavailable"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def statuses(
    functions: Iterable[str], *, has_input: bool, has_body: bool = False, bearer: bool = False,
    rate_limited: bool = False,
) -> dict[int, list[str]]:
    """Every error status a route can answer, with the codes each carries.

    ``functions``: the api functions the route calls; ``has_input``: it reads
    parameters, headers or a body; ``bearer``: it reads the Authorization
    header (a malformed one is 401); ``rate_limited``: an auth route.
    """
    codes: dict[int, list[str]] = {500: ["internal"], 503: ["unavailable"]}

    def add(status: int, code: str) -> None:
        if code not in codes.setdefault(status, []):
            codes[status].append(code)

    for function in functions:
        for sqlstate in sorted(RAISES[function]):
            add(CODES[sqlstate].http_status, sqlstate)
    if has_input:
        for code in ("bad_request", "22021"):
            add(400, code)
    if has_body:
        for code in ("bad_json", "22P02", "22P05"):
            add(400, code)
        add(413, "body_too_large")
    if bearer:
        add(401, "28000")
    if rate_limited:
        add(429, "too_many_requests")
    return dict(sorted(codes.items()))


def responses(**route: Any) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route (see :func:`statuses` for the arguments)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, codes in statuses(**route).items():
        means = [f"`{c}`: {SQLSTATE_MEANS.get(c) or OWN_CODES[c]}" for c in codes]
        response: dict[str, Any] = {"model": ErrorAnswer, "description": f"{TITLES[status]}. " + "; ".join(means)}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        out[status] = response
    return out


DESCRIPTION = """\
The older system's HTTP endpoints over chatmem's SQL API.

Every answer is `{"success": true, "data": ...}` or
`{"success": false, "error": {"code": "...", "message": "...", "hint": "..."}}`.
A Bearer token (`Authorization: Bearer <token>`) acts as its user; an
`X-Anonymous-User-Id` header acts as a guest (never as a registered user).
An `Authorization` header that is not `Bearer <token>` is refused with 401.

Statuses: every request that does not match this document is refused with
400 (never 422); each route lists the others it can answer, with the codes
they carry (SQLSTATEs from docs/errors.md, or the gateway's own). 429 and
503 carry `Retry-After`. An unknown path is 404 and an unknown method 405
(with `Allow`), both in the same envelope.

Request schemas state the limits the database enforces; where a limit is a
setting of the database (`chatmem_settings`), the schema gives its default.
"""


def install(app: FastAPI) -> None:
    """Replace FastAPI's document with the honest one: no 422, optional auth, said once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=DESCRIPTION,
                               routes=app.routes)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _without_null(parameter["schema"])
                if "security" in operation:
                    # A token is optional everywhere: without one a route acts
                    # as the guest of X-Anonymous-User-Id (or as nobody).
                    operation["security"] = [*operation["security"], {}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's ``anyOf: [X, null]`` as X: a header or query value is absent, never null."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [o for o in options if o != {"type": "null"}]
    if len(kept) != 1:
        return schema
    merged = {k: v for k, v in schema.items() if k != "anyOf"}
    merged.update(kept[0])
    return merged
