"""The older system's endpoints: each reads JSON, makes one api call, answers the envelope.

Each route's OpenAPI entry names its answer's schema and the statuses it can
send, derived from the api functions it calls (chatmem.gateway.document).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Security
from fastapi.responses import JSONResponse
from psycopg.rows import class_row, scalar_row

from chatmem.calls import json_arg
from chatmem.gateway import document, shapes
from chatmem.gateway.bodies import (
    ID_MAX,
    ID_PATTERN,
    INT64_MAX,
    INT64_MIN,
    LIMIT_MAX,
    LIMIT_MIN,
    LoginBody,
    MessageBody,
    NewSessionBody,
    QABody,
    RefreshBody,
    RegisterBody,
    documented,
)
from chatmem.gateway.database import Api, BearerToken, caller
from chatmem.models import Login, Message, NewSession, QAPair, Registration, Session, Tokens

router = APIRouter()

Token = Annotated[str | None, Security(BearerToken())]
AnonymousUserId = Annotated[str | None, Header(
    alias="X-Anonymous-User-Id",
    description="The guest id (e.g. a crypto.randomUUID() kept in localStorage), when not signed in; "
                "ignored beside a Bearer token. 1-255 characters, not only spaces, no control characters.",
    json_schema_extra=documented(pattern=ID_PATTERN, minLength=1, maxLength=ID_MAX))]
SessionId = Annotated[str, Path(
    description="The session's id: 1-255 characters, not only spaces, no control characters.",
    json_schema_extra=documented(pattern=ID_PATTERN, minLength=1, maxLength=ID_MAX))]

# Over HTTP a guest id is the X-Anonymous-User-Id header, except where a body
# names it (chatmem.api_errors.NAMES): the words an error uses, per route.
NAMES: dict[str, dict[str, str]] = {
    "/api/auth/register": {"p_anonymous_user_id": "anonymousUserId"},
    "/api/auth/login": {"p_anonymous_user_id": "anonymousUserId"},
}
# The statuses of the routes that act for a caller (token or guest header).
_AS_CALLER = ("require_user", "require_guest")


def api(request: Request) -> Api:
    return request.app.state.api  # type: ignore[no-any-return]


def ok(data: Any, status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, **extra}, status_code=status)


@router.post("/api/chat/session", status_code=201, tags=["chat"],
             operation_id="create_session", response_model=document.NewSessionAnswer,
             responses=document.responses(functions=["create_session"], has_input=True, has_body=True,
                                          bearer=True))
async def create_session(
    request: Request, token: Token, body: NewSessionBody | None = None,
    x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Start a session: the Bearer token's user's, else the guest's (`userId` or X-Anonymous-User-Id).

    An invalid or expired token counts as none here (the older system's optional
    authentication): the session is then the guest's.
    """
    names: dict[str, str] = {}
    request.state.names = names  # filled before the call that may fail
    return await new_session(api(request), names, token, body, x_anonymous_user_id)


@router.get("/api/chat/sessions", tags=["chat"], operation_id="list_sessions", response_model=document.SessionsAnswer,
            responses=document.responses(functions=[*_AS_CALLER, "list_sessions"], has_input=True, bearer=True))
async def list_sessions(request: Request, token: Token, x_anonymous_user_id: AnonymousUserId = None) -> JSONResponse:
    """The caller's sessions, newest first (none without a token or guest header)."""
    return await sessions(api(request), token, x_anonymous_user_id)


@router.post("/api/chat/session/{session_id}/messages", status_code=201, tags=["chat"], operation_id="add_message",
             response_model=document.CreatedAnswer,
             responses=document.responses(functions=[*_AS_CALLER, "add_message"], has_input=True, has_body=True,
                                          bearer=True))
async def add_message(
    request: Request, session_id: SessionId, body: MessageBody, token: Token,
    x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Append a message to one of the caller's sessions."""
    return await message_added(api(request), session_id, token, x_anonymous_user_id, body)


@router.get("/api/chat/session/{session_id}/messages", tags=["chat"],
            operation_id="get_messages", response_model=document.MessagesAnswer,
            responses=document.responses(functions=[*_AS_CALLER, "get_messages"], has_input=True, bearer=True))
async def get_messages(
    request: Request, session_id: SessionId, token: Token,
    limit: Annotated[int | None, Query(
        ge=LIMIT_MIN, le=LIMIT_MAX, description="How many of the latest messages: 1-1000 (default 100).")] = None,
    before: Annotated[int | None, Query(
        ge=INT64_MIN, le=INT64_MAX, json_schema_extra=documented(format="int64"),
        description="Only messages with an id below this one: page back with the smallest id you hold.")] = None,
    x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """A session's messages, oldest first (`limit`, and `before` a message id to page back)."""
    return await messages(api(request), session_id, token, x_anonymous_user_id, limit, before)


@router.post("/api/chat/session/{session_id}/qa", status_code=201, tags=["chat"], operation_id="add_qa_pair",
             response_model=document.CreatedAnswer,
             responses=document.responses(functions=[*_AS_CALLER, "add_qa_pair"], has_input=True, has_body=True,
                                          bearer=True))
async def add_qa_pair(
    request: Request, session_id: SessionId, body: QABody, token: Token,
    x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Record a question and its answer in one of the caller's sessions."""
    return await qa_pair_added(api(request), session_id, token, x_anonymous_user_id, body)


@router.get("/api/chat/session/{session_id}/qa", tags=["chat"],
            operation_id="get_qa_pairs", response_model=document.QAPairsAnswer,
            responses=document.responses(functions=[*_AS_CALLER, "get_qa_pairs"], has_input=True, bearer=True))
async def get_qa_pairs(
    request: Request, session_id: SessionId, token: Token, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """A session's Q&A pairs, in order."""
    return await qa_pairs(api(request), session_id, token, x_anonymous_user_id)


# -- the chat routes' work, shared with chatmem.gateway.fast_path ------------------------
# Each takes what the route's parameters hold once FastAPI (or the fast path)
# has read and validated them: the token (bearer()), the guest header's
# value, the path's session id, the query's numbers and the body model.
# ``names`` (create_session) receives the SQL names this request words
# differently (request.state.names, read by chatmem.gateway.errors).

async def new_session(db: Api, names: dict[str, str], token: str | None, body: NewSessionBody | None,
                      x_anonymous_user_id: str | None) -> JSONResponse:
    body = body or NewSessionBody()
    guest = body.userId
    if guest is None and x_anonymous_user_id is not None:
        guest = x_anonymous_user_id
        names["p_user_id"] = "X-Anonymous-User-Id"
    row = await db.one("create_session", class_row(NewSession), {}, {
        "user_id": guest, "context": json_arg(body.context), "token": token,
    })
    return ok(shapes.new_session(row), 201)


async def sessions(db: Api, token: str | None, x_anonymous_user_id: str | None) -> JSONResponse:
    rows = await db.rows("list_sessions", class_row(Session), {"user_id": caller(token, x_anonymous_user_id)})
    return ok([shapes.session(r) for r in rows])


async def message_added(db: Api, session_id: str, token: str | None, x_anonymous_user_id: str | None,
                        body: MessageBody) -> JSONResponse:
    message_id = await db.one("add_message", scalar_row, {
        "session_id": session_id, "user_id": caller(token, x_anonymous_user_id),
        "role": body.role, "content": body.content})
    return ok({"id": message_id}, 201)


async def messages(db: Api, session_id: str, token: str | None, x_anonymous_user_id: str | None,
                   limit: int | None, before: int | None) -> JSONResponse:
    rows = await db.rows("get_messages", class_row(Message), {
        "session_id": session_id, "user_id": caller(token, x_anonymous_user_id),
    }, {"limit": limit, "before_id": before})
    return ok([shapes.message(r) for r in rows])


async def qa_pair_added(db: Api, session_id: str, token: str | None, x_anonymous_user_id: str | None,
                        body: QABody) -> JSONResponse:
    pair_id = await db.one("add_qa_pair", scalar_row, {
        "session_id": session_id, "user_id": caller(token, x_anonymous_user_id),
        "question": body.question, "answer": body.answer})
    return ok({"id": pair_id}, 201)


async def qa_pairs(db: Api, session_id: str, token: str | None, x_anonymous_user_id: str | None) -> JSONResponse:
    rows = await db.rows("get_qa_pairs", class_row(QAPair), {
        "session_id": session_id, "user_id": caller(token, x_anonymous_user_id)})
    return ok([shapes.qa_pair(r) for r in rows])


@router.post("/api/auth/register", status_code=201, tags=["auth"],
             operation_id="register", response_model=document.RegistrationAnswer,
             responses=document.responses(functions=["register_user"], has_input=True, has_body=True,
                                          rate_limited=True))
async def register(request: Request, body: RegisterBody) -> JSONResponse:
    """Create an account and claim the guest's sessions (`anonymousUserId`)."""
    row = await api(request).one("register_user", class_row(Registration), {
        "name": body.name, "email": body.email, "password": body.password,
    }, {"anonymous_user_id": body.anonymousUserId})
    return ok(shapes.registration(row), 201, message="User registered successfully")


@router.post("/api/auth/login", tags=["auth"], operation_id="login", response_model=document.LoginAnswer,
             responses=document.responses(functions=["login"], has_input=True, has_body=True, rate_limited=True))
async def login(request: Request, body: LoginBody) -> JSONResponse:
    """Sign in and claim the guest's sessions (`anonymousUserId`)."""
    row = await api(request).one("login", class_row(Login), {
        "email": body.email, "password": body.password,
    }, {"anonymous_user_id": body.anonymousUserId})
    return ok(shapes.login(row), message="Login successful")


@router.post("/api/auth/refresh", tags=["auth"], operation_id="refresh", response_model=document.TokensAnswer,
             responses=document.responses(functions=["refresh"], has_input=True, has_body=True, rate_limited=True))
async def refresh(request: Request, body: RefreshBody) -> JSONResponse:
    """Exchange a refresh token for new tokens."""
    row = await api(request).one("refresh", class_row(Tokens), {"refresh_token": body.refreshToken})
    return ok(shapes.tokens(row))


@router.post("/api/auth/logout", tags=["auth"], operation_id="logout", response_model=document.LoggedOutAnswer,
             responses=document.responses(functions=["logout"], has_input=False, bearer=True))
async def logout(request: Request, token: Token) -> JSONResponse:
    """Revoke the Bearer token and its refresh token (`loggedOut` false without a live token)."""
    revoked = await api(request).one("logout", scalar_row, {"token": token})
    return ok({"loggedOut": bool(revoked)})


@router.get("/healthz", tags=["ops"], operation_id="healthz", response_model=document.HealthAnswer,
            responses=document.responses(functions=["schema_version"], has_input=False))
async def healthz(request: Request) -> JSONResponse:
    """Database reachable, and its schema version."""
    version = await api(request).one("schema_version", scalar_row, {})
    return ok({"database": "ok", "schemaVersion": version})
