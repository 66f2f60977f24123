"""The older system's endpoints: each reads JSON, makes one api call, answers the envelope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from psycopg.rows import class_row, scalar_row

from chatmem.calls import json_arg
from chatmem.gateway import shapes
from chatmem.gateway.bodies import LoginBody, MessageBody, NewSessionBody, QABody, RefreshBody, RegisterBody
from chatmem.gateway.database import Api, bearer, caller
from chatmem.models import Login, Message, NewSession, QAPair, Registration, Session, Tokens

router = APIRouter()

Authorization = Annotated[str | None, Header(description="Bearer <access token>")]
AnonymousUserId = Annotated[
    str | None, Header(alias="X-Anonymous-User-Id", description="The guest id, when not signed in.")
]


def api(request: Request) -> Api:
    return request.app.state.api  # type: ignore[no-any-return]


def ok(data: Any, status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, **extra}, status_code=status)


@router.post("/api/chat/session", status_code=201, tags=["chat"])
async def create_session(
    request: Request, body: NewSessionBody | None = None,
    authorization: Authorization = None, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Start a session: the Bearer token's user's, else the guest's (`userId` or X-Anonymous-User-Id)."""
    body = body or NewSessionBody()
    row = await api(request).one("create_session", class_row(NewSession), {}, {
        "user_id": body.userId or x_anonymous_user_id, "context": json_arg(body.context),
        "token": bearer(authorization),
    })
    return ok(shapes.new_session(row), 201)


@router.get("/api/chat/sessions", tags=["chat"])
async def list_sessions(
    request: Request, authorization: Authorization = None, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """The caller's sessions, newest first."""
    rows = await api(request).rows("list_sessions", class_row(Session), {
        "user_id": caller(authorization, x_anonymous_user_id)})
    return ok([shapes.session(r) for r in rows])


@router.post("/api/chat/session/{session_id}/messages", status_code=201, tags=["chat"])
async def add_message(
    request: Request, session_id: str, body: MessageBody,
    authorization: Authorization = None, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Append a message to one of the caller's sessions."""
    message_id = await api(request).one("add_message", scalar_row, {
        "session_id": session_id, "user_id": caller(authorization, x_anonymous_user_id),
        "role": body.role, "content": body.content})
    return ok({"id": message_id}, 201)


@router.get("/api/chat/session/{session_id}/messages", tags=["chat"])
async def get_messages(
    request: Request, session_id: str, limit: int | None = None, before: int | None = None,
    authorization: Authorization = None, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """A session's messages, oldest first (`limit`, and `before` a message id to page back)."""
    rows = await api(request).rows("get_messages", class_row(Message), {
        "session_id": session_id, "user_id": caller(authorization, x_anonymous_user_id),
    }, {"limit": limit, "before_id": before})
    return ok([shapes.message(r) for r in rows])


@router.post("/api/chat/session/{session_id}/qa", status_code=201, tags=["chat"])
async def add_qa_pair(
    request: Request, session_id: str, body: QABody,
    authorization: Authorization = None, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Record a question and its answer in one of the caller's sessions."""
    pair_id = await api(request).one("add_qa_pair", scalar_row, {
        "session_id": session_id, "user_id": caller(authorization, x_anonymous_user_id),
        "question": body.question, "answer": body.answer})
    return ok({"id": pair_id}, 201)


@router.get("/api/chat/session/{session_id}/qa", tags=["chat"])
async def get_qa_pairs(
    request: Request, session_id: str,
    authorization: Authorization = None, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """A session's Q&A pairs, in order."""
    rows = await api(request).rows("get_qa_pairs", class_row(QAPair), {
        "session_id": session_id, "user_id": caller(authorization, x_anonymous_user_id)})
    return ok([shapes.qa_pair(r) for r in rows])


@router.post("/api/auth/register", status_code=201, tags=["auth"])
async def register(request: Request, body: RegisterBody) -> JSONResponse:
    """Create an account and claim the guest's sessions (`anonymousUserId`)."""
    row = await api(request).one("register_user", class_row(Registration), {
        "name": body.name, "email": body.email, "password": body.password,
    }, {"anonymous_user_id": body.anonymousUserId})
    return ok(shapes.registration(row), 201, message="User registered successfully")


@router.post("/api/auth/login", tags=["auth"])
async def login(request: Request, body: LoginBody) -> JSONResponse:
    """Sign in and claim the guest's sessions (`anonymousUserId`)."""
    row = await api(request).one("login", class_row(Login), {
        "email": body.email, "password": body.password,
    }, {"anonymous_user_id": body.anonymousUserId})
    return ok(shapes.login(row), message="Login successful")


@router.post("/api/auth/refresh", tags=["auth"])
async def refresh(request: Request, body: RefreshBody) -> JSONResponse:
    """Exchange a refresh token for new tokens."""
    row = await api(request).one("refresh", class_row(Tokens), {"refresh_token": body.refreshToken})
    return ok(shapes.tokens(row))


@router.post("/api/auth/logout", tags=["auth"])
async def logout(request: Request, authorization: Authorization = None) -> JSONResponse:
    """Revoke the Bearer token and its refresh token."""
    revoked = await api(request).one("logout", scalar_row, {"token": bearer(authorization)})
    return ok({"loggedOut": bool(revoked)})


@router.get("/healthz", tags=["ops"])
async def healthz(request: Request) -> JSONResponse:
    """Database reachable, and its schema version."""
    version = await api(request).one("schema_version", scalar_row, {})
    return ok({"database": "ok", "schemaVersion": version})

