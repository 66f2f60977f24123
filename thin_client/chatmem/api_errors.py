"""The one table of SQLSTATEs the SQL API raises: Python exception and HTTP status per code.

docs/errors.md is the registry in prose; :data:`CODES` is the same registry in
code.  The client turns a server error into the exception named here, and the
HTTP gateway reads the status from the same row, so the two never drift.
Errors whose SQLSTATE is not in the table (a lost connection, a server
shutting down) are not ours: they pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

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


class AllowanceUsedUp(ChatmemError):
    """CM003: the caller sent its allowance of user turns in the last 24 hours; the message says when
    the next is allowed (:attr:`retry_after` is that many seconds)."""

    # The SQL API's message ends "..., in N seconds": the wait, as the
    # database's clock counts it at the refusal.
    _IN_SECONDS = re.compile(r"\bin (\d+) seconds?\Z")

    @property
    def retry_after(self) -> int | None:
        """Seconds until the next user turn is allowed (from the message; the registry's default if absent)."""
        found = self._IN_SECONDS.search(self.message)
        return max(1, int(found.group(1))) if found else super().retry_after


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
        # CM003 says when the next turn is allowed: Retry-After is that wait
        # (AllowanceUsedUp.retry_after); 60 only for a message that lacks it.
        Code("CM003", "message_allowance_used_up", AllowanceUsedUp, 429, retry_after=60),
        # The server is busy, not the caller wrong: 503 with Retry-After.  A
        # bcrypt takes about 0.1 s and hash_wait is 1 s by default: 1 second.
        Code("CM004", "hashing_busy", HashingBusy, 503, retry_after=1),
    )
})


# Which of the codes above each api function can raise: its COMMENT ON
# FUNCTION's "Errors:" line, plus what the registry (docs/errors.md) says a
# trigger raises for it (CM002, the guest session cap).  The HTTP gateway
# derives every route's statuses from this and CODES, so its OpenAPI document
# lists what the database can answer; tests/test_openapi.py checks it against
# the comments in the database.  Any function may also fail for reasons that
# are not ours (a lost connection: 503 over HTTP; a bug: 500).
RAISES: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    name: frozenset(codes)
    for name, codes in (
        ("create_or_get_session", ("22023", "42501", "CM002")),
        ("create_session", ("22023", "28000", "42501", "CM002")),
        ("register_user", ("22023", "23505", "25001", "CM004")),
        ("login", ("22023", "25001", "28P01", "CM001", "CM004")),
        ("authenticate", ()),
        ("refresh", ("22023", "28000")),
        ("logout", ()),
        ("require_user", ("28000",)),
        ("require_guest", ("22023", "28000")),
        ("add_message", ("22023", "25001", "42501", "P0002", "CM003")),
        ("get_messages", ("22023", "42501", "P0002")),
        ("add_qa_pair", ("22023", "42501", "P0002")),
        ("get_qa_pairs", ("22023", "42501", "P0002")),
        ("list_sessions", ("22023",)),
        ("delete_guest_data", ("22023",)),
        ("purge_guest_sessions", ("22023",)),
        ("schema_version", ()),
        # Account lifecycle (issue 13).
        ("change_password", ("22023", "25001", "28000", "28P01", "CM001", "CM004")),
        ("request_password_reset", ("22023", "25001")),
        ("reset_password", ("22023", "25001", "28000", "CM004")),
        ("logout_everywhere", ("25001", "28000")),
        ("export_user_data", ("28000",)),
        ("delete_account", ("25001", "28000", "28P01", "CM001", "CM004")),
        ("link_identity", ("22023", "23505", "25001", "42501")),
        # message allowances (issue 12)
        ("get_allowance", ("22023",)),
        # Conversations a person manages (issue 12).
        ("rename_session", ("22023", "42501", "P0002")),
        ("delete_session", ("22023", "42501", "P0002")),
        ("list_conversations", ("22023",)),
        ("preview_claim", ("22023", "28000")),
        ("claim_receipt", ("28000",)),
    )
})


# -- the same refusal in the caller's words ---------------------------------------
#
# The SQL API's messages name SQL parameters ("p_email: is required") and its
# hints name SQL functions ("Log in with api.login instead"): right for a
# caller of the SQL API, wrong for a web front end or a person at the command
# line.  These two tables say the same thing in the words of the other two
# surfaces: over HTTP the JSON field, header, query parameter or route; in the
# CLI the command, flag or argument.  Callers of the SQL API (and of
# chatmem.Client) keep the SQL texts.

Surface = Literal["http", "cli"]


@dataclass(frozen=True)
class Words:
    """One SQL name or hint as an HTTP caller and as a CLI user should read it."""

    http: str
    cli: str

    def on(self, surface: Surface) -> str:
        return self.http if surface == "http" else self.cli


# The names a message can start with ("p_email: ...", "api.login must run at
# READ COMMITTED ..."): every parameter the SQL API names in an error, and the
# functions it names.  A route may override one (over HTTP the guest id is the
# X-Anonymous-User-Id header, except in the auth bodies: anonymousUserId).
NAMES: Final[Mapping[str, Words]] = MappingProxyType({
    "p_session_id": Words("session_id", "SESSION_ID"),
    "p_user_id": Words("userId", "this device's user or guest id (the state file)"),
    "p_anonymous_user_id": Words("X-Anonymous-User-Id", "this device's guest id (the state file)"),
    "p_metadata": Words("metadata", "--metadata"),
    "p_context": Words("context", "--context"),
    "p_token": Words("Authorization", "the saved login"),
    "p_refresh_token": Words("refreshToken", "the saved login"),
    "p_name": Words("name", "--name"),
    "p_email": Words("email", "--email"),
    "p_password": Words("password", "--password"),
    "p_role": Words("role", "--role"),
    "p_content": Words("content", "TEXT"),
    "p_question": Words("question", "QUESTION"),
    "p_answer": Words("answer", "ANSWER"),
    "p_limit": Words("limit", "--limit"),
    "p_before_id": Words("before", "--before"),
    "p_title": Words("title", "TITLE"),
    "p_idle_for": Words("idle time", "idle time"),
    "p_dry_run": Words("dry run", "dry run"),
    "api.register_user": Words("POST /api/auth/register", "chatmem register"),
    "api.login": Words("POST /api/auth/login", "chatmem login"),
    # Account lifecycle (issue 13).
    "p_current_password": Words("currentPassword", "the current password"),
    "p_new_password": Words("newPassword", "the new password"),
    "p_reset_token": Words("resetToken", "the reset token"),
    "p_provider": Words("idToken: iss", "the identity provider"),
    "p_subject": Words("idToken: sub", "the identity provider's subject"),
    "api.change_password": Words("POST /api/auth/password", "chatmem passwd"),
    "api.request_password_reset": Words("POST /api/auth/password/reset-request", "a password reset request"),
    "api.reset_password": Words("POST /api/auth/password/reset", "a password reset"),
    "api.logout_everywhere": Words("POST /api/auth/logout-everywhere", "chatmem logout --everywhere"),
    "api.delete_account": Words("DELETE /api/account", "chatmem account delete"),
    "api.link_identity": Words("POST /api/auth/oidc", "a sign-in through an identity provider"),
    # message allowances (issue 12)
    "api.add_message": Words("POST /api/chat/session/{session_id}/messages", "chatmem say"),
})

_LOG_IN_AGAIN = Words("Log in again: POST /api/auth/login.", "Log in again: chatmem login --email EMAIL.")

# Hints, by the SQL API's exact text, that name SQL (or a setting a caller
# cannot change).  Any other hint reads the same everywhere.
HINTS: Final[Mapping[str, Words]] = MappingProxyType({
    "Create it first with api.create_or_get_session or api.create_session.": Words(
        "Create one with POST /api/chat/session and use the sessionId it answers.",
        "Create one first: chatmem session new (or chatmem session open SESSION_ID)."),
    "Omit p_user_id, or pass the id of the token's own user.": Words(
        "Omit userId, or send the id of the token's own user.",
        "Log in again: chatmem logout, then chatmem login --email EMAIL."),
    "Pass the account's access token in p_token (log in again if it expired).": Words(
        "Send the account's access token as Authorization: Bearer <token> "
        "(log in again with POST /api/auth/login if it expired).",
        "Log in again: chatmem login --email EMAIL."),
    "Log in with api.login instead (pass the guest id there to keep the guest's sessions).": Words(
        "Log in with POST /api/auth/login instead (send anonymousUserId there to keep the guest's sessions).",
        "Log in instead: chatmem login --email EMAIL (this device's guest sessions come along)."),
    "Log in again, or exchange your refresh token with api.refresh.": Words(
        "Log in again (POST /api/auth/login), or exchange your refresh token at POST /api/auth/refresh.",
        "Log in again: chatmem login --email EMAIL."),
    "Log in again.": _LOG_IN_AGAIN,
    "Ask for 1 to 1000 messages; page back with p_before_id.": Words(
        "Ask for 1 to 1000 messages with limit; page back with before.",
        "Ask for 1 to 1000 messages with --limit; page back with --before."),
    "Pass the refresh_token returned by login, register_user or refresh.": Words(
        "Send the refreshToken answered by POST /api/auth/login, /api/auth/register or /api/auth/refresh.",
        "Log in again: chatmem login --email EMAIL."),
    "Send the account's access token instead of its id.": Words(
        "Send the account's access token as Authorization: Bearer <token> "
        "instead of its id in X-Anonymous-User-Id.",
        "This device's guest id names an account: log in with chatmem login --email EMAIL instead."),
    "Use a session you created, or start a new one.": Words(
        "Use a session you created (GET /api/chat/sessions), or start a new one (POST /api/chat/session).",
        "Use a session you created (chatmem sessions), or start a new one (chatmem session new)."),
    "Reuse an existing session, register, or wait; the limit is chatmem_settings.guest_sessions_per_hour.": Words(
        "Reuse an existing session (GET /api/chat/sessions), register (POST /api/auth/register), "
        "or wait (Retry-After).",
        "Reuse an existing session (chatmem sessions), register (chatmem register), or wait; "
        "the limit is chatmem_settings.guest_sessions_per_hour."),
    "Split the text, or raise chatmem_settings.message_max_chars.": Words(
        "Split the text into several messages.",
        "Split the text, or raise chatmem_settings.message_max_chars."),
    "Write user turns; assistant and system turns come from a role that is a member of chatmem_assistant.": Words(
        "Send role user: over HTTP only user turns are accepted; assistant and system turns come from "
        "the backend that talks to the model.",
        "Write user turns; assistant and system turns come from a role that is a member of chatmem_assistant "
        "(on the embedded cluster chatmem uses one by itself; with DATABASE_URL, set it to such a role)."),
    # Account lifecycle (issue 13).
    "This account signs in through an identity provider and has no password; set one with "
    "api.request_password_reset.": Words(
        "This account signs in through an identity provider and has no password; set one with "
        "POST /api/auth/password/reset-request.",
        "This account signs in through an identity provider and has no password; set one through "
        "a password reset (the product's \"forgot password\" link)."),
    "Give your current password, or reset it with api.request_password_reset.": Words(
        "Send your current password as currentPassword, or reset it with POST /api/auth/password/reset-request.",
        "Give your current password, or reset it through the product's \"forgot password\" link."),
    "Ask for a new one with api.request_password_reset.": Words(
        "Ask for a new one with POST /api/auth/password/reset-request.",
        "Ask for a new one through the product's \"forgot password\" link."),
    "Sign in to that account with its password; linking by email needs "
    "chatmem_settings.link_identity_by_email.": Words(
        "Sign in to that account with its password (POST /api/auth/login).",
        "Sign in to that account with its password: chatmem login --email EMAIL."),
    "Pass NULL, with a token from a sign-in of the last 5 minutes.": Words(
        "Send no password, with a token from a sign-in of the last 5 minutes (POST /api/auth/oidc).",
        "Give no password (--yes), after signing in again through the identity provider."),
    # message allowances (issue 12)
    "Sign up for more messages, or wait until then; the allowance is chatmem_settings.guest_messages_per_day.": Words(
        "Sign up for more messages (POST /api/auth/register), or wait until then (Retry-After).",
        "Sign up for more messages (chatmem register), or wait until then; "
        "the allowance is chatmem_settings.guest_messages_per_day."),
    "Wait until then; the allowance is chatmem_settings.user_messages_per_day.": Words(
        "Wait until then (Retry-After); GET /api/chat/allowance shows what is left.",
        "Wait until then (chatmem allowance shows what is left); "
        "the allowance is chatmem_settings.user_messages_per_day."),
    # Conversations a person manages (issue 12).
    "Use a title of at most 200 characters, or NULL to clear it.": Words(
        "Send a title of at most 200 characters, or null or an empty title to clear it.",
        "Use a TITLE of at most 200 characters, or '' to clear it."),
    "Use a title on one line, without tabs, newlines or other control characters.": Words(
        "Send a title on one line, without tabs, newlines or other control characters.",
        "Use a TITLE on one line, without tabs, newlines or other control characters."),
    "Ask for 1 to 200 conversations; page on with p_before and p_before_id.": Words(
        "Ask for 1 to 200 conversations with limit; page on with before and beforeId "
        "(the last row's updatedAt and sessionId).",
        "Ask for 1 to 200 conversations with --limit; page on with --before "
        "(chatmem sessions prints the next page's command)."),
    "Pass the updated_at and the session_id of the last row you hold, together.": Words(
        "Send before and beforeId together: the updatedAt and the sessionId of the last row you hold.",
        "Pass --before as UPDATED_AT/SESSION_ID, as chatmem sessions prints it."),
})

_LEADING_NAME = re.compile(r"(?:api\.|p_)[a-z_]+\b")


def in_words(
    error: ChatmemError, surface: Surface, names: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """The error's message and hint for an HTTP caller or a CLI user (see :data:`NAMES`, :data:`HINTS`).

    ``names`` overrides :data:`NAMES` for one route or command, e.g.
    ``{"p_anonymous_user_id": "anonymousUserId"}``.
    """
    message = error.message
    leading = _LEADING_NAME.match(message)
    if leading:
        name = leading.group()
        word = (names or {}).get(name) or (NAMES[name].on(surface) if name in NAMES else None)
        if word is not None:
            message = word + message[leading.end():]
    hint = error.hint
    if hint is not None and hint in HINTS:
        hint = HINTS[hint].on(surface)
    return message, hint


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
    "HINTS",
    "NAMES",
    "RAISES",
    "AllowanceUsedUp",
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
    "Surface",
    "TooManyLoginAttempts",
    "Words",
    "WrongIsolation",
    "from_psycopg",
    "http_status",
    "in_words",
    "retry_after",
]
