"""``chatmem.Client``: one method per function of the SQL API, nothing else.

Every method runs exactly one statement, ``SELECT * FROM api.f(p_x => ...)``,
on an autocommit connection borrowed from a ``psycopg_pool.ConnectionPool``,
so a Client is safe to share between threads.  Optional parameters are
keyword-only; leaving one out (or passing None) omits it from the call, so
the SQL function's own default applies.  Errors the API raises on purpose
become the exceptions of :mod:`chatmem.api_errors`; any other error passes
through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from uuid import UUID

import psycopg
from psycopg.rows import RowFactory, TupleRow, class_row, scalar_row
from psycopg_pool import ConnectionPool

from chatmem import target
from chatmem.api_errors import from_psycopg
from chatmem.calls import api_query, json_arg
from chatmem.models import (
    Allowance,
    ClaimPreviewItem,
    ClaimReceiptItem,
    Conversation,
    IdentitySignIn,
    Login,
    Message,
    NewSession,
    QAPair,
    Registration,
    Session,
    Tokens,
)

T = TypeVar("T")


class Client:
    """A thread-safe handle on the chatmem SQL API.

    >>> with Client.from_env() as chat:                      # doctest: +SKIP
    ...     s = chat.create_or_get_session("s-1", user_id="guest-42")
    ...     chat.add_message(s.session_id, "guest-42", "user", "Hello")

    ``min_size``/``max_size`` size the pool; ``timeout`` is how long a call
    waits for a free connection before ``psycopg_pool.PoolTimeout``.
    ``prepare_threshold=None`` turns server-side prepared statements off (for
    poolers that cannot keep them).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 30.0,
        prepare_threshold: int | None = 5,
        application_name: str = "chatmem",
    ) -> None:
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={
                "autocommit": True,
                "prepare_threshold": prepare_threshold,
                "application_name": application_name,
            },
            name="chatmem",
            open=True,
        )

    @classmethod
    def from_env(
        cls,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 30.0,
        prepare_threshold: int | None = 5,
    ) -> Self:
        """A client on ``DATABASE_URL`` (its role as given), else on the embedded cluster
        (started if needed) as ``chatmem_app_login``, a member of chatmem_app only."""
        url = target.app_url("app")
        return cls(
            url, min_size=min_size, max_size=max_size, timeout=timeout,
            prepare_threshold=prepare_threshold,
        )

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Close the pool and its connections."""
        self._pool.close()

    @property
    def closed(self) -> bool:
        return self._pool.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sessions ----------------------------------------------------------

    def create_or_get_session(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        """Open a session by id, creating it if it does not exist (``api.create_or_get_session``).

        ``user_id`` is the caller: a registered user's id, a guest id, or None
        for no identity.  Raises InvalidInput, ForbiddenSession.
        """
        return self._one(
            "create_or_get_session", class_row(Session),
            {"session_id": session_id},
            {"user_id": user_id, "metadata": json_arg(metadata)},
        )

    def create_session(
        self,
        *,
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> NewSession:
        """Start a new session with a generated id (``api.create_session``).

        With a valid ``token`` the session is its user's; without one,
        ``user_id`` is a guest id (or None: 'anonymous').  Raises InvalidInput,
        NotAuthorized (a registered user's id without a valid token),
        ForbiddenSession (a token and another user's id).
        """
        return self._one(
            "create_session", class_row(NewSession),
            {},
            {"user_id": user_id, "context": json_arg(context), "token": token},
        )

    def list_sessions(self, user_id: str | None) -> list[Session]:
        """The caller's sessions, newest first (``api.list_sessions``); none for None."""
        return self._rows("list_sessions", class_row(Session), {"user_id": user_id}, {})

    # -- accounts ----------------------------------------------------------

    def register_user(
        self,
        name: str,
        email: str,
        password: str,
        *,
        anonymous_user_id: str | None = None,
    ) -> Registration:
        """Create an account, sign it in and claim the guest's sessions (``api.register_user``).

        Raises InvalidInput, EmailTaken, WrongIsolation.
        """
        return self._one(
            "register_user", class_row(Registration),
            {"name": name, "email": email, "password": password},
            {"anonymous_user_id": anonymous_user_id},
        )

    def login(
        self,
        email: str,
        password: str,
        *,
        anonymous_user_id: str | None = None,
    ) -> Login:
        """Sign in and claim the guest's sessions (``api.login``).

        Raises InvalidCredentials, InvalidInput, WrongIsolation.
        """
        return self._one(
            "login", class_row(Login),
            {"email": email, "password": password},
            {"anonymous_user_id": anonymous_user_id},
        )

    def authenticate(self, token: str | None) -> UUID | None:
        """The user id of a valid access token, else None (``api.authenticate``). Never raises."""
        return cast("UUID | None", self._one("authenticate", scalar_row, {"token": token}, {}))

    def refresh(self, refresh_token: str) -> Tokens:
        """Exchange a refresh token for new tokens (``api.refresh``).

        Raises NotAuthorized for an unknown, expired, revoked or reused token
        (a reused one also revokes every token of that login).
        """
        return self._one("refresh", class_row(Tokens), {"refresh_token": refresh_token}, {})

    def logout(self, token: str | None) -> bool:
        """Revoke an access token and its refresh token (``api.logout``); False if none was live."""
        return bool(self._one("logout", scalar_row, {"token": token}, {}))

    def require_user(self, token: str | None) -> UUID:
        """The user id of a valid access token (``api.require_user``); NotAuthorized otherwise."""
        return cast("UUID", self._one("require_user", scalar_row, {"token": token}, {}))

    def require_guest(self, anonymous_user_id: str | None) -> str | None:
        """The guest id unchanged if it is no registered user's id (``api.require_guest``).

        Raises NotAuthorized for a registered user's id, InvalidInput for a malformed one.
        """
        return cast("str | None", self._one(
            "require_guest", scalar_row, {"anonymous_user_id": anonymous_user_id}, {},
        ))

    # -- account lifecycle ---------------------------------------------------

    def change_password(self, token: str | None, current_password: str | None, new_password: str | None) -> bool:
        """Change the token's user's password (``api.change_password``); True.

        Every other login of the user is revoked; this token stays valid.
        Raises NotAuthorized, InvalidInput, InvalidCredentials (wrong current
        password, counted as a failed login), TooManyLoginAttempts, HashingBusy,
        WrongIsolation.
        """
        return bool(self._one("change_password", scalar_row, {
            "token": token, "current_password": current_password, "new_password": new_password}, {}))

    def request_password_reset(self, email: str | None) -> str:
        """A single-use reset token to send to ``email`` (``api.request_password_reset``).

        The same shape for an email without an account (it resets nothing).
        Raises InvalidInput, WrongIsolation.
        """
        return cast("str", self._one("request_password_reset", scalar_row, {"email": email}, {}))

    def reset_password(self, reset_token: str | None, new_password: str | None) -> UUID:
        """Set a new password with a reset token (``api.reset_password``); the user id.

        Every login of the user is revoked.  Raises InvalidInput, NotAuthorized
        (unknown, expired or used token), HashingBusy, WrongIsolation.
        """
        return cast("UUID", self._one("reset_password", scalar_row, {
            "reset_token": reset_token, "new_password": new_password}, {}))

    def logout_everywhere(self, token: str | None) -> int:
        """Revoke every login of the token's user, this one included (``api.logout_everywhere``).

        Returns how many logins were live.  Raises NotAuthorized, WrongIsolation.
        """
        return int(self._one("logout_everywhere", scalar_row, {"token": token}, {}))

    def export_user_data(self, token: str | None) -> dict[str, Any]:
        """Everything stored about the token's user, as one JSON document (``api.export_user_data``).

        Raises NotAuthorized.
        """
        return cast("dict[str, Any]", self._one("export_user_data", scalar_row, {"token": token}, {}))

    def delete_account(self, token: str | None, password: str | None) -> int:
        """Erase the token's user and everything theirs (``api.delete_account``); sessions erased.

        ``password`` is None for an account made through an identity provider
        (then the token must come from a sign-in of the last 5 minutes).
        Raises NotAuthorized, InvalidCredentials, TooManyLoginAttempts,
        HashingBusy, WrongIsolation.
        """
        return int(self._one("delete_account", scalar_row, {"token": token, "password": password}, {}))

    def link_identity(
        self,
        provider: str,
        subject: str,
        email: str,
        name: str | None,
        *,
        anonymous_user_id: str | None = None,
    ) -> IdentitySignIn:
        """Sign in (or sign up) through a provider whose ID token the caller verified (``api.link_identity``).

        ``provider`` and ``subject`` are the token's ``iss`` and ``sub``.  The
        client's role must be a member of chatmem_identity_broker.  Raises
        InvalidInput, EmailTaken, WrongIsolation, ForbiddenSession (not a broker).
        """
        return self._one(
            "link_identity", class_row(IdentitySignIn),
            {"provider": provider, "subject": subject, "email": email, "name": name},
            {"anonymous_user_id": anonymous_user_id},
        )

    # -- guest data ----------------------------------------------------------

    def delete_guest_data(self, anonymous_user_id: str) -> int:
        """Erase a guest's unclaimed sessions with their messages (``api.delete_guest_data``).

        Returns how many sessions were deleted.  Raises InvalidInput.
        """
        return int(self._one(
            "delete_guest_data", scalar_row, {"anonymous_user_id": anonymous_user_id}, {},
        ))

    def purge_guest_sessions(self, idle_for: timedelta, *, dry_run: bool | None = None) -> int:
        """Delete unclaimed guest sessions idle longer than ``idle_for``; return how many.

        ``api.purge_guest_sessions``; with ``dry_run=True`` it only counts them.
        Granted to chatmem_admin only.  Raises InvalidInput.
        """
        return int(self._one(
            "purge_guest_sessions", scalar_row, {"idle_for": idle_for}, {"dry_run": dry_run},
        ))

    def schema_version(self) -> str | None:
        """The last applied migration's id (``api.schema_version``), for health checks."""
        return cast("str | None", self._one("schema_version", scalar_row, {}, {}))

    # -- conversation memory -----------------------------------------------

    def add_message(self, session_id: str, user_id: str | None, role: str, content: str) -> int:
        """Append a message (``api.add_message``); returns its id.

        ``role`` is user, assistant or system.  Raises InvalidInput, NotFound,
        ForbiddenSession, AllowanceUsedUp (a user turn past the caller's allowance).
        """
        return int(self._one(
            "add_message", scalar_row,
            {"session_id": session_id, "user_id": user_id, "role": role, "content": content}, {},
        ))

    def get_messages(
        self,
        session_id: str,
        user_id: str | None,
        *,
        limit: int | None = None,
        before_id: int | None = None,
    ) -> list[Message]:
        """The latest ``limit`` messages (default 100) before ``before_id``, oldest first.

        Raises InvalidInput, NotFound, ForbiddenSession.
        """
        return self._rows(
            "get_messages", class_row(Message),
            {"session_id": session_id, "user_id": user_id},
            {"limit": limit, "before_id": before_id},
        )

    def add_qa_pair(self, session_id: str, user_id: str | None, question: str, answer: str) -> int:
        """Record a question and its answer (``api.add_qa_pair``); returns the pair's id.

        Raises InvalidInput, NotFound, ForbiddenSession.
        """
        return int(self._one(
            "add_qa_pair", scalar_row,
            {"session_id": session_id, "user_id": user_id, "question": question, "answer": answer},
            {},
        ))

    def get_qa_pairs(self, session_id: str, user_id: str | None) -> list[QAPair]:
        """A session's Q&A pairs in the order they were added (``api.get_qa_pairs``)."""
        return self._rows(
            "get_qa_pairs", class_row(QAPair), {"session_id": session_id, "user_id": user_id}, {},
        )

    # -- message allowances (issue 12) ----------------------------------------

    def get_allowance(self, user_id: str | None) -> Allowance:
        """The caller's user turns of the last 24 hours and its allowance (``api.get_allowance``).

        ``allowed`` None is no limit.  Raises InvalidInput.  ``add_message``
        raises AllowanceUsedUp (CM003) once ``used`` reaches ``allowed``.
        """
        return self._one("get_allowance", class_row(Allowance), {"user_id": user_id}, {})

    # -- conversations (issue 12) --------------------------------------------

    def rename_session(self, session_id: str, user_id: str | None, title: str | None) -> Session:
        """Give one of the caller's sessions a title (``api.rename_session``); return the session.

        None, empty or spaces-only clears it.  ``updated_at`` does not change.
        Raises InvalidInput (over 200 characters, a control character),
        NotFound, ForbiddenSession.
        """
        return self._one(
            "rename_session", class_row(Session),
            {"session_id": session_id, "user_id": user_id, "title": title}, {},
        )

    def delete_session(self, session_id: str, user_id: str | None) -> bool:
        """Delete one of the caller's sessions with its messages and Q&A pairs (``api.delete_session``).

        True when deleted.  A guest may delete its own sessions.  Raises
        InvalidInput, NotFound, ForbiddenSession.
        """
        return bool(self._one(
            "delete_session", scalar_row, {"session_id": session_id, "user_id": user_id}, {},
        ))

    def list_conversations(
        self,
        user_id: str | None,
        *,
        limit: int | None = None,
        before: datetime | None = None,
        before_id: str | None = None,
    ) -> list[Conversation]:
        """One page of the caller's conversations, most recent activity first (``api.list_conversations``).

        ``limit`` 1-200 (default 50).  For the next page pass the last row's
        ``updated_at`` as ``before`` and its ``session_id`` as ``before_id``.
        Raises InvalidInput.
        """
        return self._rows(
            "list_conversations", class_row(Conversation),
            {"user_id": user_id}, {"limit": limit, "before": before, "before_id": before_id},
        )

    def preview_claim(self, anonymous_user_id: str | None) -> list[ClaimPreviewItem]:
        """The guest sessions signing up or logging in now would move to the account (``api.preview_claim``).

        Raises NotAuthorized for a registered user's id, InvalidInput for a malformed one.
        """
        return self._rows(
            "preview_claim", class_row(ClaimPreviewItem), {"anonymous_user_id": anonymous_user_id}, {},
        )

    def claim_receipt(self, token: str | None, *, since: datetime | None = None) -> list[ClaimReceiptItem]:
        """The claims that moved guest sessions into the token's account, newest first (``api.claim_receipt``).

        ``since`` keeps those made at or after it.  Raises NotAuthorized.
        """
        return self._rows("claim_receipt", class_row(ClaimReceiptItem), {"token": token}, {"since": since})

    # -- plumbing ----------------------------------------------------------

    def _rows(
        self,
        function: str,
        row_factory: RowFactory[T],
        required: Mapping[str, object],
        optional: Mapping[str, object],
    ) -> list[T]:
        # The same statement the HTTP gateway sends: named arguments, optional
        # ones only when given, so the SQL defaults stay the source of truth.
        query, params = api_query(function, required, optional)
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=row_factory) as cur:
                cur.execute(query, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            mapped = from_psycopg(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _one(
        self,
        function: str,
        row_factory: RowFactory[T],
        required: Mapping[str, object],
        optional: Mapping[str, object],
    ) -> T:
        rows = self._rows(function, row_factory, required, optional)
        if len(rows) != 1:
            raise RuntimeError(f"api.{function} returned {len(rows)} rows, expected one")
        return rows[0]

