"""Message allowances over HTTP (issue 12): how many messages the caller has left today.

A user turn past the allowance is refused by ``POST
/api/chat/session/{session_id}/messages`` with 429 (CM003) and ``Retry-After``
(the seconds until the next turn is allowed, chatmem.api_errors.AllowanceUsedUp);
this route lets a page say "3 messages left today" before that.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.rows import class_row

from chatmem.gateway import document, shapes
from chatmem.gateway.database import caller
from chatmem.gateway.routes import AnonymousUserId, Token, api, ok
from chatmem.models import Allowance

router = APIRouter()


@router.get("/api/chat/allowance", tags=["chat"], operation_id="get_allowance",
            response_model=document.AllowanceAnswer,
            responses=document.responses(functions=["require_user", "require_guest", "get_allowance"],
                                         has_input=True, bearer=True))
async def get_allowance(request: Request, token: Token, x_anonymous_user_id: AnonymousUserId = None) -> JSONResponse:
    """The caller's messages of the last 24 hours, its allowance (`allowed` null: no limit) and when
    the oldest counted one leaves the window (`resetsAt`); without a token or guest header, nothing is counted."""
    row = await api(request).one("get_allowance", class_row(Allowance), {
        "user_id": caller(token, x_anonymous_user_id)})
    return ok(shapes.allowance(row))
