"""Accounts after sign-up (issue 13): password change and reset, log out everywhere, export,
erasure, and sign-in through an external identity provider.

Each route reads JSON, makes one api call and answers the envelope, as in
chatmem.gateway.routes.  Two do one thing more, outside the database: the
reset request hands its token to the mail hook (chatmem.gateway.mailhook),
never to the caller; the OIDC sign-in verifies the provider's ID token
(chatmem.gateway.oidc) and then calls ``api.link_identity`` through a pool of
its own, connected as a member of chatmem_identity_broker (the gateway's main
role must not be one: docs/security.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg.rows import class_row, scalar_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from chatmem.api_errors import ForbiddenSession
from chatmem.gateway import document, errors
from chatmem.gateway.bodies import (
    CLAIM_PATTERN,
    EMAIL_MAX,
    EMAIL_PATTERN,
    ID_MAX,
    NO_NUL_PATTERN,
    PASSWORD_MAX_BYTES,
    PASSWORD_MIN,
    Body,
    Text,
    documented,
)
from chatmem.gateway.database import Api
from chatmem.gateway.mailhook import DEVELOPMENT_NOTICE, MailHook, MailHookFailed
from chatmem.gateway.oidc import Provider, ProviderUnavailable, Verifier, parse_providers, providers_from_env
from chatmem.gateway.routes import Token, api, ok
from chatmem.gateway.shapes import iso
from chatmem.models import IdentitySignIn

router = APIRouter()
log = logging.getLogger("chatmem.gateway")

# An ID token is a few KiB at most; a reset token is 64 hex characters.
ID_TOKEN_MAX = 16_384
RESET_TOKEN_MAX = 1024
# Seconds a 503 of a gateway without a broker or providers tells the caller to wait:
# a configuration change, not a passing overload.
NOT_CONFIGURED_RETRY_AFTER = 60

# -- settings and the broker pool -----------------------------------------------------


def configure(app: FastAPI, *, broker_conninfo: str | None, oidc_providers: str | Sequence[Provider] | None,
              reset_mail_hook: str | None, pool_size: int = 2, prepare_threshold: int | None = 5) -> None:
    """The account routes' settings on ``app.state`` (the broker pool opens with the app)."""
    providers = (providers_from_env() if oidc_providers is None
                 else parse_providers(oidc_providers) if isinstance(oidc_providers, str)
                 else tuple(oidc_providers))
    app.state.verifier = Verifier(providers)
    app.state.mail_hook = MailHook.from_env() if reset_mail_hook is None else MailHook(reset_mail_hook)
    app.state.broker = None
    app.state.broker_pool = None
    if broker_conninfo:
        app.state.broker_pool = AsyncConnectionPool(
            broker_conninfo, min_size=0, max_size=pool_size, open=False, name="chatmem-gateway-broker",
            kwargs={"autocommit": True, "prepare_threshold": prepare_threshold,
                    "application_name": "chatmem-gateway-broker"})


async def open_broker(app: FastAPI) -> None:
    """At start: open the broker pool (if any), and say on one line where reset tokens go if to the log."""
    if app.state.mail_hook.development:
        log.warning(DEVELOPMENT_NOTICE)
    pool = app.state.broker_pool
    if pool is not None:
        await pool.open()
        app.state.broker = Api(pool)


async def close_broker(app: FastAPI) -> None:
    pool = app.state.broker_pool
    if pool is not None:
        await pool.close()


def _not_configured(message: str, hint: str) -> JSONResponse:
    return errors.envelope(503, "unavailable", message, hint, {"Retry-After": str(NOT_CONFIGURED_RETRY_AFTER)})


# -- bodies -----------------------------------------------------------------------------

_NEW_PASSWORD = Field(
    description=f"At least chatmem_settings.password_min_length characters (default {PASSWORD_MIN}) and "
    f"at most {PASSWORD_MAX_BYTES} bytes in UTF-8 (bcrypt reads no further); no NUL.",
    json_schema_extra=documented(pattern=NO_NUL_PATTERN, minLength=PASSWORD_MIN, maxLength=PASSWORD_MAX_BYTES))


class ChangePasswordBody(Body):
    currentPassword: Text = Field(
        description="The password the account has now; not empty, no NUL. A wrong one counts as a failed login.",
        json_schema_extra=documented(pattern=r"^[^\x00]+$", minLength=1))
    newPassword: Text = _NEW_PASSWORD


class ResetRequestBody(Body):
    email: Text = Field(
        description=f"The account's email (any letter case): local@domain.tld, at most {EMAIL_MAX} characters.",
        json_schema_extra=documented(pattern=EMAIL_PATTERN, minLength=5, maxLength=EMAIL_MAX))


class ResetPasswordBody(Body):
    resetToken: Text = Field(
        description="The token the reset email carried (64 hex characters); single use.",
        json_schema_extra=documented(pattern=r"^[^\x00]+$", minLength=1, maxLength=RESET_TOKEN_MAX))
    newPassword: Text = _NEW_PASSWORD


class DeleteAccountBody(Body):
    password: Text | None = Field(
        default=None, description="The account's password; null or absent for an account made through an "
        "identity provider (then the token must come from a sign-in of the last 5 minutes).",
        json_schema_extra=documented(pattern=r"^[^\x00]+$", minLength=1))


class OidcBody(Body):
    idToken: Text = Field(
        description="The ID token (a JWT) the identity provider issued to this client.",
        json_schema_extra=documented(pattern=r"^[^\x00]+$", minLength=1, maxLength=ID_TOKEN_MAX))
    anonymousUserId: Text | None = Field(
        default=None, description="The guest id whose sessions to claim; null, empty or 'anonymous' claims "
        "nothing. At most 255 characters, no control characters.",
        json_schema_extra=documented(pattern=CLAIM_PATTERN, maxLength=ID_MAX))


# -- answers ------------------------------------------------------------------------------


class PasswordChanged(BaseModel):
    changed: Literal[True]
    otherLoginsRevoked: Literal[True] = Field(description="Every other login of the account was revoked.")


class ResetRequested(BaseModel):
    requested: Literal[True] = Field(description="Always true: the answer never tells whether an account exists.")


class PasswordReset(BaseModel):
    userId: str = Field(description="The account whose password was set; every login of it was revoked.")


class LoggedOutEverywhere(BaseModel):
    revokedLogins: int = Field(description="How many logins (token families) were live and are now revoked.")


class AccountDeleted(BaseModel):
    deleted: Literal[True]
    erasedSessions: int = Field(description="How many sessions were erased with their messages.")


class ExportProfile(BaseModel):
    id: str
    name: str
    email: str
    created_at: datetime
    updated_at: datetime
    has_password: bool


class Export(BaseModel):
    """api.export_user_data's document, as it is (docs/api.md): its keys are snake_case."""

    format: Literal["chatmem-export-1"]
    exported_at: datetime
    profile: ExportProfile
    identities: list[dict[str, Any]]
    sessions: list[dict[str, Any]] = Field(description="Oldest first, each with its messages and qa_pairs.")
    claims: list[dict[str, Any]]
    sign_ins: list[dict[str, Any]]
    password_reset_requests: list[dict[str, Any]]
    failed_logins: list[datetime]


class SignedInUser(BaseModel):
    id: str


class OidcSignIn(BaseModel):
    user: SignedInUser
    created: bool = Field(description="True when this sign-in made the account.")
    token: str = Field(description="The access token: send it as Authorization: Bearer <token>.")
    refreshToken: str = Field(description="Exchange it at POST /api/auth/refresh for new tokens.")
    expiresAt: datetime
    migrated: bool = Field(description="Whether any guest session was claimed.")
    migratedSessions: int


class PasswordChangedAnswer(BaseModel):
    success: Literal[True]
    data: PasswordChanged


class ResetRequestedAnswer(BaseModel):
    success: Literal[True]
    data: ResetRequested
    message: str


class PasswordResetAnswer(BaseModel):
    success: Literal[True]
    data: PasswordReset


class LoggedOutEverywhereAnswer(BaseModel):
    success: Literal[True]
    data: LoggedOutEverywhere


class AccountDeletedAnswer(BaseModel):
    success: Literal[True]
    data: AccountDeleted


class ExportAnswer(BaseModel):
    success: Literal[True]
    data: Export


class OidcSignInAnswer(BaseModel):
    success: Literal[True]
    data: OidcSignIn


def _with_unauthorized(responses: dict[int | str, dict[str, Any]], why: str) -> dict[int | str, dict[str, Any]]:
    """A route's statuses plus 401 (28000) for a refusal the gateway makes itself (``why``)."""
    if 401 not in responses:
        responses[401] = {"model": document.ErrorAnswer, "description": f"Not authenticated. `28000`: {why}"}
    else:
        responses[401]["description"] += f"; `28000` also: {why}"
    return dict(sorted(responses.items(), key=lambda item: int(item[0])))


_EXPORT_HEADERS: dict[int | str, dict[str, Any]] = {200: {
    "description": "The document, as a download.",
    "headers": {"Content-Disposition": {
        "description": "attachment; filename=\"chatmem-export-<user id>.json\"", "required": True,
        "schema": {"type": "string"}}}}}


# -- routes --------------------------------------------------------------------------------


@router.post("/api/auth/password", tags=["account"], operation_id="change_password",
             response_model=PasswordChangedAnswer,
             responses=document.responses(functions=["change_password"], has_input=True, has_body=True,
                                          bearer=True))
async def change_password(request: Request, body: ChangePasswordBody, token: Token) -> JSONResponse:
    """Change the signed-in account's password; every other login of it is revoked, this one stays."""
    await api(request).one("change_password", scalar_row, {
        "token": token, "current_password": body.currentPassword, "new_password": body.newPassword})
    return ok({"changed": True, "otherLoginsRevoked": True})


@router.post("/api/auth/password/reset-request", status_code=202, tags=["account"],
             operation_id="request_password_reset", response_model=ResetRequestedAnswer,
             responses=document.responses(functions=["request_password_reset"], has_input=True, has_body=True,
                                          rate_limited=True))
async def request_password_reset(request: Request, body: ResetRequestBody) -> JSONResponse:
    """Ask for a password reset: the token goes to the email through the mail hook, never into this answer.

    The same answer whether or not the email has an account.
    """
    reset_token = await api(request).one("request_password_reset", scalar_row, {"email": body.email})
    try:
        await request.app.state.mail_hook.send(body.email.strip(), reset_token)
    except MailHookFailed as exc:
        log.error("%s", exc)
        return errors.envelope(503, "unavailable", "the reset email could not be sent",
                               "Try again later (Retry-After).",
                               {"Retry-After": str(errors.UNAVAILABLE_RETRY_AFTER)})
    return ok({"requested": True}, 202,
              message="If an account has this email, a message with a reset link is on its way.")


@router.post("/api/auth/password/reset", tags=["account"], operation_id="reset_password",
             response_model=PasswordResetAnswer,
             responses=document.responses(functions=["reset_password"], has_input=True, has_body=True))
async def reset_password(request: Request, body: ResetPasswordBody) -> JSONResponse:
    """Set a new password with the emailed reset token (single use); every login of the account is revoked."""
    user_id = await api(request).one("reset_password", scalar_row, {
        "reset_token": body.resetToken, "new_password": body.newPassword})
    return ok({"userId": str(user_id)})


@router.post("/api/auth/logout-everywhere", tags=["account"], operation_id="logout_everywhere",
             response_model=LoggedOutEverywhereAnswer,
             responses=document.responses(functions=["logout_everywhere"], has_input=False, bearer=True))
async def logout_everywhere(request: Request, token: Token) -> JSONResponse:
    """Revoke every login of the signed-in account, on every device, this one included."""
    revoked = await api(request).one("logout_everywhere", scalar_row, {"token": token})
    return ok({"revokedLogins": int(revoked)})


@router.get("/api/account/export", tags=["account"], operation_id="export_account",
            response_model=ExportAnswer,
            responses={**document.responses(functions=["export_user_data"], has_input=False, bearer=True),
                       **_EXPORT_HEADERS})
async def export_account(request: Request, token: Token) -> JSONResponse:
    """Everything stored about the signed-in account, as one JSON download (a copy of their data)."""
    data = await api(request).one("export_user_data", scalar_row, {"token": token})
    filename = f"chatmem-export-{data['profile']['id']}.json"
    return JSONResponse({"success": True, "data": data},
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.delete("/api/account", tags=["account"], operation_id="delete_account",
               response_model=AccountDeletedAnswer,
               responses=document.responses(functions=["delete_account"], has_input=True, has_body=True,
                                            bearer=True))
async def delete_account(request: Request, token: Token, body: DeleteAccountBody | None = None) -> JSONResponse:
    """Erase the signed-in account and everything that is theirs, after checking its password."""
    password = body.password if body is not None else None
    erased = await api(request).one("delete_account", scalar_row, {"token": token, "password": password})
    return ok({"deleted": True, "erasedSessions": int(erased)})


@router.post("/api/auth/oidc", tags=["auth"], operation_id="oidc_sign_in", response_model=OidcSignInAnswer,
             responses=_with_unauthorized(
                 document.responses(functions=["link_identity"], has_input=True, has_body=True, rate_limited=True),
                 "an ID token that is malformed, forged, expired, not yet valid, for another audience, of an "
                 "issuer not configured, without an email, or with an unverified one"))
async def oidc_sign_in(request: Request, body: OidcBody) -> JSONResponse:
    """Sign in (or up) with an identity provider's ID token; the guest's sessions (`anonymousUserId`) come along.

    The gateway verifies the token (signature against the issuer's JWKS, iss, aud, exp, nbf), then
    signs the person in through its identity-broker connection.
    """
    state = request.app.state
    if not state.verifier.providers:
        return _not_configured("sign-in through an identity provider is not configured on this gateway",
                               "Set CHATMEM_OIDC_PROVIDERS (docs/security.md).")
    broker: Api | None = state.broker
    if broker is None:
        return _not_configured(
            "sign-in through an identity provider needs the gateway's identity-broker database connection",
            "Set CHATMEM_BROKER_DATABASE_URL to a login role in chatmem_identity_broker (docs/security.md).")
    try:
        identity = await run_in_threadpool(state.verifier.verify, body.idToken)
    except ProviderUnavailable as exc:
        log.error("%s", exc)
        return errors.envelope(503, "unavailable", "the identity provider's keys could not be fetched",
                               "Try again later (Retry-After).",
                               {"Retry-After": str(errors.UNAVAILABLE_RETRY_AFTER)})
    request.state.names = {"p_email": "idToken: email", "p_name": "idToken: name",
                           "p_anonymous_user_id": "anonymousUserId"}
    try:
        row = await broker.one("link_identity", class_row(IdentitySignIn), {
            "provider": identity.issuer, "subject": identity.subject, "email": identity.email,
            "name": identity.name,
        }, {"anonymous_user_id": body.anonymousUserId})
    except ForbiddenSession as exc:
        # PostgreSQL's own refusal: the broker URL names a role outside the broker group.
        raise ForbiddenSession(
            exc.sqlstate, "the gateway's identity-broker connection may not sign people in",
            "Set CHATMEM_BROKER_DATABASE_URL to a login role in chatmem_identity_broker (docs/security.md).",
        ) from exc
    return ok({
        "user": {"id": str(row.user_id)}, "created": row.created, "token": row.token,
        "refreshToken": row.refresh_token, "expiresAt": iso(row.expires_at),
        "migrated": row.migrated_sessions > 0, "migratedSessions": row.migrated_sessions,
    })
