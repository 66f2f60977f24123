"""Rows of the SQL API as the older system's JSON (camelCase)."""

from __future__ import annotations

from typing import Any

from chatmem.models import Allowance, Login, Message, NewSession, QAPair, Registration, Session, Tokens


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def session(row: Session) -> dict[str, Any]:
    return {
        "sessionId": row.session_id,
        "userId": None if row.user_id is None else str(row.user_id),
        "metadata": row.metadata,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }


def new_session(row: NewSession) -> dict[str, Any]:
    return {
        "sessionId": row.session_id,
        "userId": None if row.user_id is None else str(row.user_id),
        "createdAt": iso(row.created_at),
    }


def registration(row: Registration) -> dict[str, Any]:
    answer = {
        "user": {"id": str(row.user_id), "name": row.name, "email": row.email, "createdAt": iso(row.created_at)},
        "token": row.token,
        "refreshToken": row.refresh_token,
        "migrated": row.migrated,
        "migratedSessions": row.migrated_sessions,
    }
    if row.expires_at is not None:  # once api.register_user reports it, as api.login does
        answer["expiresAt"] = iso(row.expires_at)
    return answer


def login(row: Login) -> dict[str, Any]:
    return {
        "user": {"id": str(row.user_id), "name": row.name, "email": row.email},
        "token": row.token,
        "refreshToken": row.refresh_token,
        "expiresAt": iso(row.expires_at),
        "migrated": row.migrated_sessions > 0,
        "migratedSessions": row.migrated_sessions,
    }


def tokens(row: Tokens) -> dict[str, Any]:
    return {"token": row.token, "refreshToken": row.refresh_token, "expiresAt": iso(row.expires_at)}


def message(row: Message) -> dict[str, Any]:
    return {"id": row.id, "role": row.role, "content": row.content, "createdAt": iso(row.created_at)}


def qa_pair(row: QAPair) -> dict[str, Any]:
    return {"id": row.id, "question": row.question, "answer": row.answer, "createdAt": iso(row.created_at)}


# -- message allowances (issue 12) ----------------------------------------------------


def allowance(row: Allowance) -> dict[str, Any]:
    return {"used": row.used, "allowed": row.allowed, "resetsAt": iso(row.resets_at)}
