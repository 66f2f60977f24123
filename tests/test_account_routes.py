"""Accounts over HTTP (issue 13): password change and reset with the mail hook, logout everywhere,
export, erasure, and sign-in through an identity provider made here (an RSA key, a JWKS served on
localhost, ID tokens signed with it, and every kind of bad token).

Every refusal is checked for its status and code and for what did not change in the database.
The races of these functions are attacked at the SQL level (tests/test_accounts.py); one is
repeated here through the routes: two resets with one token, exactly one succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import login_role_url
from gateway_server import running_gateway
from helpers import settings_changed

PASSWORD = "password123"
NEW_PASSWORD = "new-password-456"
ISSUER = "https://idp.example.test"
AUDIENCE = "chatmem-test-client"
MAIL_LOG = "chatmem.gateway.mail"
SQL_WORDS = re.compile(r"\bapi\.|\bp_")  # as tests/test_hints.py: not /openapi.json


# -- a provider made here ----------------------------------------------------------------


class Served:
    """A tiny HTTP server in a thread: GET answers ``document``; POST bodies are kept in ``posts``."""

    def __init__(self, document: dict[str, Any] | None = None, status: int = 200) -> None:
        self.document = document or {}
        self.status = status
        self.posts: list[dict[str, Any]] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(json.dumps(served.document).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                served.posts.append(json.loads(self.rfile.read(length)))
                self._answer(b"{}")

            def _answer(self, body: bytes) -> None:
                self.send_response(served.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentityProvider:
    """An RSA key, its JWKS on localhost, and ID tokens signed with it (or forged)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = Served({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        subject = f"sub-{uuid.uuid4().hex[:12]}"
        claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now - 5,
                                  "exp": now + 600, "email": f"{subject}@idp.example.test",
                                  "email_verified": True, "name": "Idp Person"}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, kid: str = "k1") -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.jwks.close()


@pytest.fixture(scope="module")
def broker_url(admin_url: str) -> str:
    """The test database as a login role in chatmem_identity_broker only."""
    return login_role_url(admin_url, "chatmem_test_broker", ("chatmem_identity_broker",))


def providers(idp: IdentityProvider) -> str:
    return json.dumps([{"issuer": ISSUER, "audience": [AUDIENCE, "another-client"], "jwksUrl": idp.jwks.url}])


@pytest.fixture(scope="module")
def base_url(app_url: str, broker_url: str, idp: IdentityProvider, fast_bcrypt: None) -> Iterator[str]:
    """The gateway as a deployment runs it: chatmem_app for the API, a broker pool for sign-ins,
    one provider, and reset tokens in the log (the development default)."""
    with running_gateway(app_url, broker_conninfo=broker_url, oidc_providers=providers(idp),
                         reset_mail_hook="") as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def email() -> str:
    return f"acct-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["error"]["message"] and body["error"]["hint"], body
    for text in (body["error"]["message"], body["error"]["hint"]):
        assert not SQL_WORDS.search(text), text
    return body["error"]  # type: ignore[no-any-return]


def register(http: httpx.Client, address: str | None = None, guest: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Acct", "email": address or email(), "password": PASSWORD}
    if guest:
        body["anonymousUserId"] = guest
    answer = http.post("/api/auth/register", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]  # type: ignore[no-any-return]


def login(http: httpx.Client, address: str, password: str = PASSWORD) -> httpx.Response:
    return http.post("/api/auth/login", json={"email": address, "password": password})


def signed_in(http: httpx.Client, token: str) -> bool:
    status = http.get("/api/chat/sessions", headers=bearer(token)).status_code
    assert status in (200, 401)
    return status == 200


def password_hash(admin: psycopg.Connection[Any], address: str) -> str | None:
    row = admin.execute("SELECT password_hash FROM users WHERE lower(email) = lower(%s)", [address]).fetchone()
    return None if row is None else row[0]


def reset_token_from(caplog: pytest.LogCaptureFixture, address: str) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == MAIL_LOG and address in r.getMessage()]
    assert lines, "no reset token in the gateway's log"
    return lines[-1].rsplit("reset token ", 1)[1].split(" ", 1)[0]


# -- password change -----------------------------------------------------------------------


def test_a_password_change_keeps_this_login_and_signs_out_every_other(
        http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    address = email()
    here = register(http, address)
    elsewhere = login(http, address).json()["data"]
    changed = http.post("/api/auth/password", headers=bearer(here["token"]),
                        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"success": True, "data": {"changed": True, "otherLoginsRevoked": True}}
    assert signed_in(http, here["token"])
    assert not signed_in(http, elsewhere["token"])
    assert_error(http.post("/api/auth/refresh", json={"refreshToken": elsewhere["refreshToken"]}), 401, "28000")
    assert_error(login(http, address), 401, "28P01")
    assert login(http, address, NEW_PASSWORD).status_code == 200


def test_password_change_refusals_change_nothing(http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    address = email()
    account = register(http, address)
    before = password_hash(admin, address)
    auth = bearer(account["token"])
    wrong = assert_error(http.post("/api/auth/password", headers=auth,
                                   json={"currentPassword": "not-it-at-all", "newPassword": NEW_PASSWORD}),
                         401, "28P01")
    assert wrong["message"].startswith("currentPassword:")
    short = assert_error(http.post("/api/auth/password", headers=auth,
                                   json={"currentPassword": PASSWORD, "newPassword": "short"}), 400, "22023")
    assert short["message"] == "newPassword: is shorter than 8 characters"
    long = assert_error(http.post("/api/auth/password", headers=auth,
                                  json={"currentPassword": PASSWORD, "newPassword": "é" * 40}), 400, "22023")
    assert long["message"].startswith("newPassword: is 80 bytes")
    assert_error(http.post("/api/auth/password", json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
                 401, "28000")
    assert_error(http.post("/api/auth/password", headers=bearer("not-a-token"),
                           json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}), 401, "28000")
    assert password_hash(admin, address) == before
    assert signed_in(http, account["token"])
    # The wrong guess was counted, as a failed login is.
    failures = admin.execute("SELECT count(*) FROM login_failures WHERE email = lower(%s)", [address]).fetchone()
    assert failures == (1,)


# -- password reset --------------------------------------------------------------------------


def test_a_reset_goes_to_the_log_by_default_never_to_the_answer_and_works_once(
        http: httpx.Client, admin: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    address = email()
    account = register(http, address)
    caplog.set_level(logging.INFO, logger=MAIL_LOG)
    asked = http.post("/api/auth/password/reset-request", json={"email": address.upper()})
    assert asked.status_code == 202, asked.text
    token = reset_token_from(caplog, address.upper())
    assert len(token) == 64 and token not in asked.text
    assert asked.json()["data"] == {"requested": True}

    reset = http.post("/api/auth/password/reset", json={"resetToken": token, "newPassword": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    assert reset.json()["data"] == {"userId": account["user"]["id"]}
    assert not signed_in(http, account["token"]), "a reset signs every login out"
    assert login(http, address, NEW_PASSWORD).status_code == 200
    changed = password_hash(admin, address)

    again = assert_error(http.post("/api/auth/password/reset", json={"resetToken": token, "newPassword": PASSWORD}),
                         401, "28000")
    assert "POST /api/auth/password/reset-request" in again["hint"]
    assert password_hash(admin, address) == changed


def test_an_unknown_email_gets_the_same_answer_and_its_token_resets_nothing(
        http: httpx.Client, admin: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    known, unknown = email(), email()
    register(http, known)
    caplog.set_level(logging.INFO, logger=MAIL_LOG)
    answers = [http.post("/api/auth/password/reset-request", json={"email": a}) for a in (known, unknown)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    decoy = reset_token_from(caplog, unknown)
    assert_error(http.post("/api/auth/password/reset", json={"resetToken": decoy, "newPassword": NEW_PASSWORD}),
                 401, "28000")
    assert admin.execute("SELECT count(*) FROM users WHERE lower(email) = %s", [unknown]).fetchone() == (0,)


def test_reset_refusals_change_nothing(http: httpx.Client, admin: psycopg.Connection[Any],
                                       caplog: pytest.LogCaptureFixture) -> None:
    address = email()
    register(http, address)
    before = password_hash(admin, address)
    caplog.set_level(logging.INFO, logger=MAIL_LOG)
    assert_error(http.post("/api/auth/password/reset-request", json={"email": "nope"}), 400, "22023")
    assert http.post("/api/auth/password/reset-request", json={"email": address}).status_code == 202
    token = reset_token_from(caplog, address)
    # A password that breaks the rules: refused first, the token stays usable.
    assert_error(http.post("/api/auth/password/reset", json={"resetToken": token, "newPassword": "é" * 40}),
                 400, "22023")
    assert_error(http.post("/api/auth/password/reset", json={"resetToken": "0" * 64, "newPassword": NEW_PASSWORD}),
                 401, "28000")
    assert_error(http.post("/api/auth/password/reset", json={"resetToken": "", "newPassword": NEW_PASSWORD}),
                 401, "28000")
    assert_error(http.post("/api/auth/password/reset", json={"newPassword": NEW_PASSWORD}), 400, "bad_request")
    assert password_hash(admin, address) == before
    assert http.post("/api/auth/password/reset", json={"resetToken": token, "newPassword": NEW_PASSWORD}
                     ).status_code == 200


def test_two_resets_with_one_token_over_http_exactly_one_succeeds(
        base_url: str, admin: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=MAIL_LOG)
    for round_ in range(3):
        with httpx.Client(base_url=base_url, timeout=60) as http:
            address = email()
            register(http, address)
            assert http.post("/api/auth/password/reset-request", json={"email": address}).status_code == 202
            token = reset_token_from(caplog, address)
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def reset(n: int, token: str = token) -> None:
            with httpx.Client(base_url=base_url, timeout=60) as client:
                assert client.get("/healthz").status_code == 200
                barrier.wait(timeout=30)
                statuses.append(client.post("/api/auth/password/reset", json={
                    "resetToken": token, "newPassword": f"{NEW_PASSWORD}-{n}"}).status_code)

        threads = [threading.Thread(target=reset, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(statuses) == [200, 401], (round_, statuses)
        with httpx.Client(base_url=base_url, timeout=30) as http:
            winners = [n for n in range(2) if login(http, address, f"{NEW_PASSWORD}-{n}").status_code == 200]
        assert len(winners) == 1
        assert admin.execute("SELECT count(*) FROM password_reset_tokens r JOIN users u ON u.id = r.user_id"
                             " WHERE lower(u.email) = %s", [address]).fetchone() == (0,)


def write_hook_script(folder: Path, exit_code: int = 0) -> tuple[str, Path]:
    """A mail hook command that keeps its stdin and its command line in files."""
    script, out = folder / "hook.py", folder / "mail.json"
    script.write_text(
        "import json, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'stdin': sys.stdin.read(), 'argv': sys.argv}}))\n"
        f"sys.exit({exit_code})\n")
    return f"{sys.executable} {script}", out


def test_a_command_hook_gets_the_token_on_stdin_not_on_its_command_line(
        app_url: str, tmp_path: Path, fast_bcrypt: None) -> None:
    command, out = write_hook_script(tmp_path)
    with running_gateway(app_url, reset_mail_hook=command) as url, httpx.Client(base_url=url, timeout=30) as http:
        address = email()
        register(http, address)
        asked = http.post("/api/auth/password/reset-request", json={"email": address})
        assert asked.status_code == 202, asked.text
        seen = json.loads(out.read_text())
        mail = json.loads(seen["stdin"])
        assert mail["email"] == address and len(mail["resetToken"]) == 64
        assert not any(mail["resetToken"] in arg for arg in seen["argv"])
        assert mail["resetToken"] not in asked.text
        assert http.post("/api/auth/password/reset", json={
            "resetToken": mail["resetToken"], "newPassword": NEW_PASSWORD}).status_code == 200


def test_a_url_hook_gets_the_token_posted_and_a_failing_hook_is_503_without_the_token_in_the_log(
        app_url: str, tmp_path: Path, fast_bcrypt: None, caplog: pytest.LogCaptureFixture) -> None:
    mailer = Served()
    try:
        with running_gateway(app_url, reset_mail_hook=mailer.url + "send") as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            address = email()
            assert http.post("/api/auth/password/reset-request", json={"email": address}).status_code == 202
            assert [p["email"] for p in mailer.posts] == [address]
            assert len(mailer.posts[0]["resetToken"]) == 64
        mailer.status = 500
        with running_gateway(app_url, reset_mail_hook=mailer.url + "send") as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            caplog.set_level(logging.INFO)
            failed = http.post("/api/auth/password/reset-request", json={"email": address})
            assert_error(failed, 503, "unavailable")
            assert failed.headers["Retry-After"]
            token = mailer.posts[-1]["resetToken"]
            assert token not in caplog.text and token not in failed.text
    finally:
        mailer.close()
    command, _ = write_hook_script(tmp_path, exit_code=3)
    with running_gateway(app_url, reset_mail_hook=command) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert_error(http.post("/api/auth/password/reset-request", json={"email": email()}), 503, "unavailable")


def test_the_gateway_says_at_start_when_reset_tokens_go_to_its_log(
        app_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with running_gateway(app_url, reset_mail_hook=""):
        pass
    notices = [r for r in caplog.records if "CHATMEM_RESET_MAIL_HOOK is not set" in r.getMessage()]
    assert len(notices) == 1 and notices[0].levelno == logging.WARNING
    caplog.clear()
    with running_gateway(app_url, reset_mail_hook="true"):
        pass
    assert "CHATMEM_RESET_MAIL_HOOK" not in caplog.text


def test_reset_requests_and_oidc_sign_ins_count_toward_the_auth_rate_limit(
        app_url: str, idp: IdentityProvider, broker_url: str) -> None:
    with running_gateway(app_url, auth_rate_limit=3, reset_mail_hook="true", broker_conninfo=broker_url,
                         oidc_providers=providers(idp)) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/api/auth/password/reset-request", json={"email": email()}).status_code == 202
        assert http.post("/api/auth/oidc", json={"idToken": "x.y.z"}).status_code == 401
        assert http.post("/api/auth/login", json={"email": email(), "password": PASSWORD}).status_code == 401
        assert_error(http.post("/api/auth/password/reset-request", json={"email": email()}), 429,
                     "too_many_requests")
        assert_error(http.post("/api/auth/oidc", json={"idToken": "x.y.z"}), 429, "too_many_requests")


# -- logout everywhere, export, erasure ---------------------------------------------------------


def test_logout_everywhere_revokes_every_login_this_one_included(http: httpx.Client) -> None:
    address = email()
    first = register(http, address)
    second = login(http, address).json()["data"]
    answer = http.post("/api/auth/logout-everywhere", headers=bearer(second["token"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"revokedLogins": 2}
    assert not signed_in(http, first["token"]) and not signed_in(http, second["token"])
    for tokens in (first, second):
        assert_error(http.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}), 401, "28000")
    assert_error(http.post("/api/auth/logout-everywhere", headers=bearer(second["token"])), 401, "28000")
    assert_error(http.post("/api/auth/logout-everywhere"), 401, "28000")


def test_export_is_a_json_download_of_everything_and_no_secret(http: httpx.Client) -> None:
    guest = f"acct-guest-{uuid.uuid4().hex[:8]}"
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    assert http.post(f"/api/chat/session/{sid}/messages", json={"content": "before sign-up"},
                     headers={"X-Anonymous-User-Id": guest}).status_code == 201
    address = email()
    account = register(http, address, guest)
    exported = http.get("/api/account/export", headers=bearer(account["token"]))
    assert exported.status_code == 200, exported.text
    assert exported.headers["Content-Disposition"] == (
        f'attachment; filename="chatmem-export-{account["user"]["id"]}.json"')
    data = exported.json()["data"]
    assert data["format"] == "chatmem-export-1"
    assert data["profile"]["email"] == address and data["profile"]["has_password"] is True
    assert [s["session_id"] for s in data["sessions"]] == [sid]
    assert [m["content"] for m in data["sessions"][0]["messages"]] == ["before sign-up"]
    assert [(c["session_id"], c["anonymous_user_id"], c["method"]) for c in data["claims"]] == [
        (sid, guest, "register")]
    for secret in (account["token"], account["refreshToken"], "$2", "password_hash", "token_hash"):
        assert secret not in exported.text
    assert_error(http.get("/api/account/export"), 401, "28000")
    assert_error(http.get("/api/account/export", headers=bearer("nope")), 401, "28000")


def test_delete_account_needs_the_password_and_then_erases_everything(
        http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    address = email()
    account = register(http, address)
    auth = bearer(account["token"])
    sid = http.post("/api/chat/session", headers=auth).json()["data"]["sessionId"]
    assert http.post(f"/api/chat/session/{sid}/messages", json={"content": "mine"}, headers=auth).status_code == 201
    user_id = account["user"]["id"]

    def rows() -> tuple[Any, ...]:
        found = admin.execute("SELECT (SELECT count(*) FROM users WHERE id = %s),"
                              " (SELECT count(*) FROM conversation_sessions WHERE user_id = %s),"
                              " (SELECT count(*) FROM conversation_messages WHERE session_id = %s)",
                              [user_id, user_id, sid]).fetchone()
        assert found is not None
        return tuple(found)

    assert rows() == (1, 1, 1)
    assert_error(http.request("DELETE", "/api/account", headers=auth, json={"password": "wrong-one"}), 401, "28P01")
    assert_error(http.request("DELETE", "/api/account", headers=auth), 401, "28P01")
    assert_error(http.request("DELETE", "/api/account", json={"password": PASSWORD}), 401, "28000")
    assert rows() == (1, 1, 1)
    erased = http.request("DELETE", "/api/account", headers=auth, json={"password": PASSWORD})
    assert erased.status_code == 200, erased.text
    assert erased.json()["data"] == {"deleted": True, "erasedSessions": 1}
    assert rows() == (0, 0, 0)
    assert_error(login(http, address), 401, "28P01")
    assert not signed_in(http, account["token"])


# -- sign-in through an identity provider ----------------------------------------------------------


def identity_rows(admin: psycopg.Connection[Any], claims: dict[str, Any]) -> tuple[Any, ...]:
    found = admin.execute(
        "SELECT (SELECT count(*) FROM user_identities WHERE subject = %s),"
        " (SELECT count(*) FROM users WHERE lower(email) = lower(%s))",
        [claims.get("sub", ""), claims.get("email", "")]).fetchone()
    assert found is not None
    return tuple(found)


def test_an_oidc_sign_in_makes_an_account_claims_the_guest_and_signs_in_again(
        http: httpx.Client, idp: IdentityProvider, admin: psycopg.Connection[Any]) -> None:
    guest = f"oidc-guest-{uuid.uuid4().hex[:8]}"
    sessions = [http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
                for _ in range(2)]
    claims = idp.claims()
    first = http.post("/api/auth/oidc", json={"idToken": idp.token(claims), "anonymousUserId": guest})
    assert first.status_code == 200, first.text
    data = first.json()["data"]
    assert data["created"] is True and data["migrated"] is True and data["migratedSessions"] == 2
    listed = http.get("/api/chat/sessions", headers=bearer(data["token"])).json()["data"]
    assert sorted(s["sessionId"] for s in listed) == sorted(sessions)
    assert {s["userId"] for s in listed} == {data["user"]["id"]}
    method = admin.execute("SELECT DISTINCT method FROM session_claims WHERE anonymous_user_id = %s",
                           [guest]).fetchall()
    assert method == [("identity",)]
    # Signed in as the provider's subject: the same account again, nothing made.
    again = http.post("/api/auth/oidc", json={"idToken": idp.token(claims)})
    assert again.status_code == 200, again.text
    assert again.json()["data"]["created"] is False
    assert again.json()["data"]["user"]["id"] == data["user"]["id"]
    assert identity_rows(admin, claims) == (1, 1)
    # No password to log in with; erasure with a fresh sign-in's token and no password.
    assert_error(login(http, claims["email"]), 401, "28P01")
    erased = http.request("DELETE", "/api/account", headers=bearer(again.json()["data"]["token"]))
    assert erased.status_code == 200, erased.text
    assert identity_rows(admin, claims) == (0, 0)


def forged(idp: IdentityProvider, kind: str) -> tuple[str, dict[str, Any]]:
    """An ID token of one bad kind, and its claims."""
    now = int(time.time())
    if kind == "other key":
        claims = idp.claims()
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return idp.token(claims, key=other), claims
    if kind == "unknown kid":
        claims = idp.claims()
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return idp.token(claims, key=other, kid="k-unknown"), claims
    if kind == "alg none":
        claims = idp.claims()
        header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
        return f"{header}.{b64(json.dumps(claims).encode())}.", claims
    if kind == "hs256 with the public key":
        claims = idp.claims()
        public_pem = idp.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()) + "."
                         + b64(json.dumps(claims).encode()))
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}", claims
    if kind == "tampered payload":
        claims = idp.claims()
        header, _, signature = idp.token(claims).split(".")
        claims = {**claims, "sub": claims["sub"] + "-admin"}
        return f"{header}.{b64(json.dumps(claims).encode())}.{signature}", claims
    overrides: dict[str, Any] = {
        "expired": {"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200},
        "not yet valid": {"nbf": now + 3600},
        "wrong audience": {"aud": "someone-else"},
        "wrong issuer": {"iss": "https://evil.example.test"},
        "no exp": {"exp": None},
        "no sub": {"sub": None},
        "no email": {"email": None},
        "unverified email": {"email_verified": False},
    }[kind]
    claims = idp.claims(**overrides)
    if kind == "no sub":
        claims["email"] = f"nosub-{uuid.uuid4().hex[:8]}@idp.example.test"
    return idp.token(claims), claims


BAD_TOKENS = ["other key", "unknown kid", "alg none", "hs256 with the public key", "tampered payload", "expired",
              "not yet valid", "wrong audience", "wrong issuer", "no exp", "no sub", "no email",
              "unverified email"]


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_a_bad_id_token_is_401_and_writes_nothing(
        http: httpx.Client, idp: IdentityProvider, admin: psycopg.Connection[Any], kind: str) -> None:
    token, claims = forged(idp, kind)
    guest = f"oidc-bad-{uuid.uuid4().hex[:8]}"
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    answer = http.post("/api/auth/oidc", json={"idToken": token, "anonymousUserId": guest})
    error = assert_error(answer, 401, "28000")
    assert error["message"].startswith("idToken:"), error
    assert identity_rows(admin, claims) == (0, 0)
    owner = admin.execute("SELECT user_id FROM conversation_sessions WHERE session_id = %s", [sid]).fetchone()
    assert owner == (None,)


def test_malformed_id_tokens_are_401_or_400(http: httpx.Client) -> None:
    for token in ("x", "a.b.c", "e30.e30.", "." * 3):
        assert_error(http.post("/api/auth/oidc", json={"idToken": token}), 401, "28000")
    assert_error(http.post("/api/auth/oidc", json={"idToken": ""}), 401, "28000")
    assert_error(http.post("/api/auth/oidc", json={}), 400, "bad_request")
    assert_error(http.post("/api/auth/oidc", json={"idToken": 42}), 400, "bad_request")


def test_an_oidc_email_of_a_password_account_is_409_unless_linking_by_email_is_on(
        http: httpx.Client, idp: IdentityProvider, admin: psycopg.Connection[Any], admin_url: str) -> None:
    address = email()
    account = register(http, address)
    claims = idp.claims(email=address)
    taken = assert_error(http.post("/api/auth/oidc", json={"idToken": idp.token(claims)}), 409, "23505")
    assert taken["message"].startswith("idToken: email:"), taken
    assert "POST /api/auth/login" in taken["hint"]
    assert identity_rows(admin, claims) == (0, 1)
    with settings_changed(admin_url, link_identity_by_email=True):
        linked = http.post("/api/auth/oidc", json={"idToken": idp.token(claims)})
    assert linked.status_code == 200, linked.text
    assert linked.json()["data"]["user"]["id"] == account["user"]["id"]
    assert linked.json()["data"]["created"] is False


def test_without_a_broker_or_providers_the_oidc_route_is_503_with_the_reason(
        app_url: str, idp: IdentityProvider, admin: psycopg.Connection[Any]) -> None:
    claims = idp.claims()
    with running_gateway(app_url, oidc_providers=providers(idp)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        error = assert_error(http.post("/api/auth/oidc", json={"idToken": idp.token(claims)}), 503, "unavailable")
        assert "CHATMEM_BROKER_DATABASE_URL" in error["hint"]
    with running_gateway(app_url, oidc_providers="[]") as url, httpx.Client(base_url=url, timeout=30) as http:
        error = assert_error(http.post("/api/auth/oidc", json={"idToken": idp.token(claims)}), 503, "unavailable")
        assert "CHATMEM_OIDC_PROVIDERS" in error["hint"]
    assert identity_rows(admin, claims) == (0, 0)


def test_the_gateways_own_role_cannot_sign_people_in(app_url: str, idp: IdentityProvider) -> None:
    """A broker URL that names a role outside chatmem_identity_broker: 403, not a sign-in."""
    claims = idp.claims()
    with running_gateway(app_url, broker_conninfo=app_url, oidc_providers=providers(idp)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        assert_error(http.post("/api/auth/oidc", json={"idToken": idp.token(claims)}), 403, "42501")


def test_an_unreachable_key_set_is_503_and_decides_nothing(
        app_url: str, broker_url: str, idp: IdentityProvider, admin: psycopg.Connection[Any]) -> None:
    dead = Served()
    dead_url = dead.url
    dead.close()
    gone = json.dumps([{"issuer": ISSUER, "audience": AUDIENCE, "jwksUrl": dead_url + "jwks"}])
    claims = idp.claims()
    with running_gateway(app_url, broker_conninfo=broker_url, oidc_providers=gone) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/api/auth/oidc", json={"idToken": idp.token(claims)})
        assert_error(answer, 503, "unavailable")
        assert answer.headers["Retry-After"]
    assert identity_rows(admin, claims) == (0, 0)


def test_provider_settings_are_checked_at_start(app_url: str) -> None:
    from chatmem.gateway import create_app

    for bad in ('{"issuer": "x"}', '[{"issuer": "", "audience": "a", "jwksUrl": "https://x/j"}]',
                '[{"issuer": "i", "audience": [], "jwksUrl": "https://x/j"}]',
                '[{"issuer": "i", "audience": "a", "jwksUrl": "file:///etc/passwd"}]'):
        with pytest.raises(ValueError, match="CHATMEM_OIDC_PROVIDERS"):
            create_app(app_url, oidc_providers=bad)
