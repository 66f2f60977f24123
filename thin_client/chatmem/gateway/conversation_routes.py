"""Conversations a person manages (issue 12): rename, delete, a paged list, the claim preview and receipt.

Each route reads its input, makes one api call as the caller (the Bearer
token's user, checked in the same statement, else the X-Anonymous-User-Id
guest, as in chatmem.gateway.routes) and answers the envelope.  The answer
models below are the OpenAPI document's; the shape functions build the JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.rows import class_row, scalar_row
from pydantic import BaseModel, Field

from chatmem.api_errors import InvalidInput
from chatmem.gateway import document, shapes
from chatmem.gateway.bodies import CNTRL, ID_MAX, ID_PATTERN, Body, Text, documented
from chatmem.gateway.database import caller
from chatmem.gateway.routes import AnonymousUserId, SessionId, Token, api, ok
from chatmem.models import ClaimPreviewItem, ClaimReceiptItem, Conversation, Session

router = APIRouter()

_AS_CALLER = ("require_user", "require_guest")

# A title: at most 200 characters once the surrounding spaces are dropped, on
# one line (no control character, no line or paragraph separator), as
# api.rename_session checks; null, empty or only spaces clears it.
TITLE_MAX = 200
_NOT_IN_TITLE = rf"{CNTRL}\u2028\u2029"
TITLE_PATTERN = (rf"^ *(?:[^{_NOT_IN_TITLE} ](?:[^{_NOT_IN_TITLE}]{{0,{TITLE_MAX - 2}}}"
                 rf"[^{_NOT_IN_TITLE} ])?)? *$")
# A page of api.list_conversations.
PAGE_MIN, PAGE_MAX, PAGE_DEFAULT = 1, 200, 50
# RFC 3339 date-time with an offset (a time without one would mean the
# server's zone), to the microsecond PostgreSQL keeps.
MOMENT_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"


def _moment(value: str | None, where: str) -> datetime | None:
    """An RFC 3339 time (the pattern already held) as a datetime; 400 naming ``where`` for a date that is none."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("query", where),
            "msg": f"is not a date and time ({exc}); e.g. 2026-11-30T12:00:00Z"}]) from None


def _moment_query(description: str) -> Any:
    return Query(description=description, pattern=MOMENT_PATTERN,
                 json_schema_extra=documented(format="date-time"))


# -- the document's answers --------------------------------------------------------


class RenamedSession(document.Session):
    title: str | None = Field(description="The title; null when it was cleared.")


class Deleted(BaseModel):
    deleted: bool = Field(description="True when the session was deleted; false, with nothing deleted, only for "
                                      "a session that became the caller's while the call ran.")


class ConversationItem(BaseModel):
    sessionId: str
    title: str | None = Field(description="The title, null if it has none.")
    createdAt: datetime
    updatedAt: datetime = Field(description="Its last activity. The next page: send this as before, and the "
                                            "sessionId as beforeId, of the last row.")
    messageCount: int
    lastMessage: str | None = Field(description="The newest message cut to 200 characters; null without messages.")


class ClaimPreview(BaseModel):
    sessionId: str
    title: str | None
    createdAt: datetime
    messageCount: int
    qaCount: int


class ClaimReceipt(BaseModel):
    sessionId: str
    anonymousUserId: str = Field(description="The guest id the session came from.")
    method: Literal["register", "login"]
    claimedAt: datetime


class RenamedAnswer(BaseModel):
    success: Literal[True]
    data: RenamedSession


class DeletedAnswer(BaseModel):
    success: Literal[True]
    data: Deleted


class ConversationsAnswer(BaseModel):
    success: Literal[True]
    data: list[ConversationItem]


class ClaimPreviewAnswer(BaseModel):
    success: Literal[True]
    data: list[ClaimPreview]


class ClaimReceiptAnswer(BaseModel):
    success: Literal[True]
    data: list[ClaimReceipt]


class TitleBody(Body):
    title: Text | None = Field(
        description=f"At most {TITLE_MAX} characters once surrounding spaces are dropped, on one line (no "
        "control characters, tabs or newlines); null, empty or only spaces clears the title.",
        json_schema_extra=documented(pattern=TITLE_PATTERN))


# -- the JSON ------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.isoformat()


def conversation(row: Conversation) -> dict[str, Any]:
    return {"sessionId": row.session_id, "title": row.title, "createdAt": _iso(row.created_at),
            "updatedAt": _iso(row.updated_at), "messageCount": row.message_count, "lastMessage": row.last_message}


def claim_preview(row: ClaimPreviewItem) -> dict[str, Any]:
    return {"sessionId": row.session_id, "title": row.title, "createdAt": _iso(row.created_at),
            "messageCount": row.message_count, "qaCount": row.qa_count}


def claim_receipt(row: ClaimReceiptItem) -> dict[str, Any]:
    return {"sessionId": row.session_id, "anonymousUserId": row.anonymous_user_id, "method": row.method,
            "claimedAt": _iso(row.claimed_at)}


# -- the routes ----------------------------------------------------------------------


@router.patch("/api/chat/session/{session_id}", tags=["chat"], operation_id="rename_session",
              response_model=RenamedAnswer,
              responses=document.responses(functions=[*_AS_CALLER, "rename_session"], has_input=True,
                                           has_body=True, bearer=True))
async def rename_session(
    request: Request, session_id: SessionId, body: TitleBody, token: Token,
    x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Give one of the caller's sessions a title (`title` null or empty clears it); its updatedAt stays."""
    row = await api(request).one("rename_session", class_row(Session), {
        "session_id": session_id, "user_id": caller(token, x_anonymous_user_id), "title": body.title})
    return ok({**shapes.session(row), "title": row.title})


@router.delete("/api/chat/session/{session_id}", tags=["chat"], operation_id="delete_session",
               response_model=DeletedAnswer,
               responses=document.responses(functions=[*_AS_CALLER, "delete_session"], has_input=True,
                                            bearer=True))
async def delete_session(
    request: Request, session_id: SessionId, token: Token, x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """Delete one of the caller's sessions with its messages and Q&A pairs (a guest may delete its own)."""
    deleted = await api(request).one("delete_session", scalar_row, {
        "session_id": session_id, "user_id": caller(token, x_anonymous_user_id)})
    return ok({"deleted": bool(deleted)})


@router.get("/api/chat/conversations", tags=["chat"], operation_id="list_conversations",
            response_model=ConversationsAnswer,
            responses=document.responses(functions=[*_AS_CALLER, "list_conversations"], has_input=True,
                                         bearer=True))
async def list_conversations(
    request: Request, token: Token,
    limit: Annotated[int | None, Query(
        ge=PAGE_MIN, le=PAGE_MAX,
        description=f"How many conversations: {PAGE_MIN}-{PAGE_MAX} (default {PAGE_DEFAULT}).")] = None,
    before: Annotated[str | None, _moment_query(
        "Only conversations last active before this time (RFC 3339, with an offset): the last row's "
        "updatedAt, for the next page.")] = None,
    beforeId: Annotated[str | None, Query(
        description="With before: the last row's sessionId, so that sessions active at the same moment are "
                    "not skipped. 1-255 characters, not only spaces, no control characters.",
        json_schema_extra=documented(pattern=ID_PATTERN, minLength=1, maxLength=ID_MAX))] = None,
    x_anonymous_user_id: AnonymousUserId = None,
) -> JSONResponse:
    """The caller's conversations, most recent activity first, a page at a time, with titles and previews.

    Next page: `before` = the last row's updatedAt and `beforeId` = its sessionId.
    """
    moment = _moment(before, "before")
    if beforeId is not None and moment is None:
        raise InvalidInput("22023", "beforeId: is given without before",
                           "Send before and beforeId together: the updatedAt and the sessionId of the last row "
                           "you hold.")
    request.state.names = {"p_before_id": "beforeId"}
    rows = await api(request).rows("list_conversations", class_row(Conversation), {
        "user_id": caller(token, x_anonymous_user_id)}, {"limit": limit, "before": moment, "before_id": beforeId})
    return ok([conversation(r) for r in rows])


@router.get("/api/chat/claim-preview", tags=["chat"], operation_id="preview_claim",
            response_model=ClaimPreviewAnswer,
            responses=document.responses(functions=["preview_claim"], has_input=True))
async def preview_claim(request: Request, x_anonymous_user_id: AnonymousUserId = None) -> JSONResponse:
    """The guest's sessions that signing up or logging in now would keep ("Sign up to keep these 3")."""
    rows = await api(request).rows("preview_claim", class_row(ClaimPreviewItem), {
        "anonymous_user_id": x_anonymous_user_id})
    return ok([claim_preview(r) for r in rows])


@router.get("/api/account/claims", tags=["account"], operation_id="claim_receipt",
            response_model=ClaimReceiptAnswer,
            responses=document.responses(functions=["claim_receipt"], has_input=True, bearer=True))
async def claims(
    request: Request, token: Token,
    since: Annotated[str | None, _moment_query(
        "Only claims made at or after this time (RFC 3339, with an offset).")] = None,
) -> JSONResponse:
    """The guest sessions that sign-ups and logins moved into the Bearer token's account, newest first."""
    rows = await api(request).rows("claim_receipt", class_row(ClaimReceiptItem), {"token": token},
                                      {"since": _moment(since, "since")})
    return ok([claim_receipt(r) for r in rows])

