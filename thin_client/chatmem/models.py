"""Typed rows returned by :class:`chatmem.Client`: one frozen dataclass per result shape.

Field names are the column names of the ``api`` functions' results, so
``psycopg.rows.class_row`` fills them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Session:
    """A conversation session (``api.create_or_get_session``, ``api.list_sessions``).

    ``user_id`` is the owner's id, None for a guest's or nobody's session; a
    guest's session carries the guest id in ``metadata["anonymousUserId"]``.
    """

    session_id: str
    user_id: UUID | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    owner_deleted_at: datetime | None
    # The conversation's title (api.rename_session), None when it has none.
    title: str | None = None


@dataclass(frozen=True)
class NewSession:
    """A session started by ``api.create_session``."""

    session_id: str
    user_id: UUID | None
    created_at: datetime


@dataclass(frozen=True)
class Registration:
    """``api.register_user``: the new account, its tokens, and the guest sessions it claimed."""

    user_id: UUID
    name: str
    email: str
    created_at: datetime
    token: str
    refresh_token: str
    migrated: bool
    migrated_sessions: int
    # When the access token expires, as api.login reports it: None while the
    # database's api.register_user does not return it (older schemas).
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Login:
    """``api.login``: the account, new tokens, and how many guest sessions it claimed."""

    user_id: UUID
    name: str
    email: str
    token: str
    refresh_token: str
    expires_at: datetime
    migrated_sessions: int


@dataclass(frozen=True)
class Tokens:
    """``api.refresh``: a new access token (valid until ``expires_at``) and refresh token."""

    token: str
    refresh_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Message:
    """A message of a session (``api.get_messages``)."""

    id: int
    role: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class QAPair:
    """A question and its answer (``api.get_qa_pairs``)."""

    id: int
    question: str
    answer: str
    created_at: datetime


@dataclass(frozen=True)
class IdentitySignIn:
    """``api.link_identity``: the account signed in through a provider (``created`` when new),
    its tokens, and how many guest sessions it claimed."""

    user_id: UUID
    created: bool
    migrated_sessions: int
    token: str
    refresh_token: str
    expires_at: datetime


# -- message allowances (issue 12) --------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """``api.get_allowance``: user turns sent in the last 24 hours, the allowance, when the oldest leaves.

    ``allowed`` None is no limit; ``resets_at`` None when no turn is counted.
    """

    used: int
    allowed: int | None
    resets_at: datetime | None


# -- conversations (issue 12) -------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """A row of ``api.list_conversations``: one of the caller's sessions, by last activity.

    ``last_message`` is the newest message's content cut to 200 characters
    (None without messages).  The next page starts before the last row's
    ``(updated_at, session_id)``.
    """

    session_id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    last_message: str | None


@dataclass(frozen=True)
class ClaimPreviewItem:
    """A row of ``api.preview_claim``: a guest session that signing up or logging in now would move."""

    session_id: str
    title: str | None
    created_at: datetime
    message_count: int
    qa_count: int


@dataclass(frozen=True)
class ClaimReceiptItem:
    """A row of ``api.claim_receipt``: a session a claim moved into the account (``method``: register or login)."""

    session_id: str
    anonymous_user_id: str
    method: str
    claimed_at: datetime
