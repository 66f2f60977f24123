"""The one table of SQLSTATEs the SQL API raises: Python exception and HTTP status per code.

docs/errors.md is the registry in prose; :data:`CODES` is the same registry in
code.  The client turns a server error into the exception named here, and the
HTTP gateway reads the status from the same row, so the two never drift.
Errors whose SQLSTATE is not in the table (a lost connection, a server
shutting down) are not ours: they pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import psycopg


class ChatmemError(Exception):
    """A refusal by the SQL API: ``sqlstate``, the server's ``message`` and its ``hint``."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(sqlstate, message, hint)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    @property
    def http_status(self) -> int:
        """The HTTP status a gateway answers with for this error."""
        code = CODES.get(self.sqlstate)
        return code.http_status if code else 500

    @property
    def retry_after(self) -> int | None:
        """Seconds a gateway tells the caller to wait (``Retry-After``), or None."""
        code = CODES.get(self.sqlstate)
        return code.retry_after if code else None


class InvalidInput(ChatmemError):
    """22023: an argument is missing, malformed or out of range (the message names it)."""


class EmailTaken(ChatmemError):
    """23505: an account with this email already exists (in any letter case)."""


class WrongIsolation(ChatmemError):
    """25001: register_user or login called inside a transaction above READ COMMITTED."""


class NotAuthorized(ChatmemError):
    """28000: a registered user's id without a valid token, or a bad refresh token."""


class InvalidCredentials(ChatmemError):
    """28P01: wrong email or wrong password (one message for both)."""


class ForbiddenSession(ChatmemError):
    """42501: the session belongs to someone else, or the caller's role may not write that turn."""


class NotFound(ChatmemError):
    """P0002: no session with that id."""


class TooManyLoginAttempts(ChatmemError):
    """CM001: too many failed logins for this email; wait for the window to pass."""


class GuestSessionLimit(ChatmemError):
    """CM002: this guest opened too many sessions recently."""


class HashingBusy(ChatmemError):
    """CM004: too many passwords are being hashed at once; retry in a moment (nothing was checked)."""


@dataclass(frozen=True)
class Code:
    """One row of the registry."""

    sqlstate: str
    name: str
    exception: type[ChatmemError]
    http_status: int
    # Seconds for an HTTP Retry-After header: the soonest a retry is worth
    # making, not a promise that it will succeed.  None: no header.
    retry_after: int | None = None


CODES: Final[Mapping[str, Code]] = MappingProxyType({
    code.sqlstate: code
    for code in (
        Code("22023", "invalid_parameter_value", InvalidInput, 400),
        Code("23505", "unique_violation", EmailTaken, 409),
        # A programming error of the caller (it opened the wrong transaction).
        Code("25001", "active_sql_transaction", WrongIsolation, 500),
        Code("28000", "invalid_authorization_specification", NotAuthorized, 401),
        Code("28P01", "invalid_password", InvalidCredentials, 401),
        Code("42501", "insufficient_privilege", ForbiddenSession, 403),
        Code("P0002", "no_data_found", NotFound, 404),
        # CM001 lifts once enough counted failures have left login_failure_window
        # (default 15 minutes), CM002 once the guest's oldest session of the
        # last hour ages out: anything from seconds to the whole window away,
        # and the error does not say.  So one minute, a polling interval, not
        # a promise; a refused retry is cheap (no bcrypt, no failure counted).
        Code("CM001", "too_many_login_attempts", TooManyLoginAttempts, 429, retry_after=60),
        Code("CM002", "guest_session_limit", GuestSessionLimit, 429, retry_after=60),
        # The server is busy, not the caller wrong: 503 with Retry-After.  A
        # bcrypt takes about 0.1 s and hash_wait is 1 s by default: 1 second.
        Code("CM004", "hashing_busy", HashingBusy, 503, retry_after=1),
    )
})


def from_psycopg(exc: psycopg.Error) -> ChatmemError | None:
    """The exception for a server error of ours, or None when its SQLSTATE is not in the table."""
    code = CODES.get(exc.sqlstate or "")
    if code is None:
        return None
    message = exc.diag.message_primary or str(exc)
    return code.exception(code.sqlstate, message, exc.diag.message_hint)


def http_status(sqlstate: str | None) -> int | None:
    """The HTTP status for one of our SQLSTATEs; None for codes that are not ours."""
    code = CODES.get(sqlstate or "")
    return code.http_status if code else None


def retry_after(sqlstate: str | None) -> int | None:
    """The Retry-After seconds for one of our SQLSTATEs; None when there is none."""
    code = CODES.get(sqlstate or "")
    return code.retry_after if code else None


__all__ = [
    "CODES",
    "ChatmemError",
    "Code",
    "EmailTaken",
    "ForbiddenSession",
    "GuestSessionLimit",
    "HashingBusy",
    "InvalidCredentials",
    "InvalidInput",
    "NotAuthorized",
    "NotFound",
    "TooManyLoginAttempts",
    "WrongIsolation",
    "from_psycopg",
    "http_status",
    "retry_after",
]
