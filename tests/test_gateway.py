"""The HTTP gateway through real HTTP: the older system's testing guide, every status, bad bodies."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from chatmem.gateway import create_app
from gateway_server import running_gateway
from helpers import settings_changed

GUIDE_GUEST = "b6b8561f-8fcb-4000-892a-457e1fd12f76"


@pytest.fixture(scope="module")
def base_url(app_url: str) -> Iterator[str]:
    """The gateway as a web backend should run it: as a login role in chatmem_app only."""
    with running_gateway(app_url) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def email() -> str:
    return f"{unique('gw')}@example.com"


def row(admin: psycopg.Connection[Any], session_id: str) -> tuple[Any, ...]:
    found = admin.execute(
        "SELECT user_id, metadata FROM conversation_sessions WHERE session_id = %s", [session_id]).fetchone()
    assert found is not None
    return found


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


# -- the older system's testing guide, scenario by scenario -----------------

def test_guide_1_anonymous_session_is_stored_with_null_user_and_the_guest_id(
        http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    guest = GUIDE_GUEST
    admin.execute("SELECT api.delete_guest_data(%s)", [guest])  # earlier runs' sessions
    response = http.post("/api/chat/session", json={"userId": guest})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["userId"] is None
    assert data["sessionId"].startswith("session_")
    user_id, metadata = row(admin, data["sessionId"])
    assert user_id is None
    # The guest id and nothing else: no default metadata (migration 0014).
    assert metadata == {"anonymousUserId": guest}
    admin.execute("SELECT api.delete_guest_data(%s)", [guest])


def test_guide_2_a_logged_in_users_session_carries_the_users_id(
        http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    address = email()
    assert http.post("/api/auth/register", json={
        "name": "Guide User", "email": address, "password": "password123"}).status_code == 201
    login = http.post("/api/auth/login", json={"email": address, "password": "password123"})
    assert login.status_code == 200
    user = login.json()["data"]["user"]
    token = login.json()["data"]["token"]

    response = http.post("/api/chat/session", json={"userId": user["id"]},
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    assert response.json()["data"]["userId"] == user["id"]
    assert str(row(admin, response.json()["data"]["sessionId"])[0]) == user["id"]


def test_guide_3_registration_migrates_the_guests_sessions(
        http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    guest = unique("guide-guest")
    sessions = [http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
                for _ in range(3)]
    for sid in sessions:
        assert http.post(f"/api/chat/session/{sid}/messages", json={"content": f"hello from {sid}"},
                         headers={"X-Anonymous-User-Id": guest}).status_code == 201
    address = email()

    # The guide's password is shorter than the policy: a clear 400 first.
    short = http.post("/api/auth/register", json={
        "name": "Guide Guest", "email": address, "password": "test123", "anonymousUserId": guest})
    error = assert_error(short, 400, "22023")
    assert error["message"] == "password: is shorter than 8 characters" and error["hint"]
    assert admin.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", [address]).fetchone() == (0,)

    registered = http.post("/api/auth/register", json={
        "name": "Guide Guest", "email": address, "password": "test1234", "anonymousUserId": guest})
    assert registered.status_code == 201
    body = registered.json()
    assert body["message"] == "User registered successfully"
    assert body["data"]["migrated"] is True
    assert body["data"]["migratedSessions"] == 3
    user_id = body["data"]["user"]["id"]
    for sid in sessions:
        owner, metadata = row(admin, sid)
        assert str(owner) == user_id
        assert "anonymousUserId" not in metadata
    listed = http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {body['data']['token']}"})
    assert {s["sessionId"] for s in listed.json()["data"]} == set(sessions)
    history = http.get(f"/api/chat/session/{sessions[0]}/messages",
                       headers={"Authorization": f"Bearer {body['data']['token']}"})
    assert [m["content"] for m in history.json()["data"]] == [f"hello from {sessions[0]}"]


def test_guide_4_an_invalid_uuid_format_is_treated_as_a_guest(
        http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    response = http.post("/api/chat/session", json={"userId": "invalid-uuid-format"})
    assert response.status_code == 201
    user_id, metadata = row(admin, response.json()["data"]["sessionId"])
    assert user_id is None
    assert metadata["anonymousUserId"] == "invalid-uuid-format"


# -- every status mapping ------------------------------------------------------

def test_22023_is_400(http: httpx.Client) -> None:
    assert_error(http.post("/api/chat/session", json={"userId": "x" * 300}), 400, "22023")


def test_23505_is_409(http: httpx.Client) -> None:
    address = email()
    assert http.post("/api/auth/register", json={"name": "A", "email": address, "password": "password123"}
                     ).status_code == 201
    assert_error(http.post("/api/auth/register", json={
        "name": "B", "email": address.upper(), "password": "password123"}), 409, "23505")


def test_28p01_is_401(http: httpx.Client) -> None:
    assert_error(http.post("/api/auth/login", json={"email": email(), "password": "password123"}), 401, "28P01")


def test_28000_is_401_for_a_bad_token_and_a_bad_refresh(http: httpx.Client) -> None:
    assert_error(http.get("/api/chat/sessions", headers={"Authorization": "Bearer not-a-token"}), 401, "28000")
    assert_error(http.post("/api/auth/refresh", json={"refreshToken": "nope"}), 401, "28000")


def test_42501_is_403_for_another_guests_session(http: httpx.Client) -> None:
    owner, intruder = unique("owner"), unique("intruder")
    sid = http.post("/api/chat/session", json={"userId": owner}).json()["data"]["sessionId"]
    forged = http.post(f"/api/chat/session/{sid}/messages", json={"content": "mine now"},
                       headers={"X-Anonymous-User-Id": intruder})
    assert_error(forged, 403, "42501")
    assert_error(http.get(f"/api/chat/session/{sid}/messages", headers={"X-Anonymous-User-Id": intruder}),
                 403, "42501")


def test_a_token_for_one_user_cannot_reach_anothers_session(http: httpx.Client) -> None:
    alice = http.post("/api/auth/register", json={"name": "A", "email": email(), "password": "password123"})
    bob = http.post("/api/auth/register", json={"name": "B", "email": email(), "password": "password123"})
    alice_token, bob_token = alice.json()["data"]["token"], bob.json()["data"]["token"]
    sid = http.post("/api/chat/session", headers={"Authorization": f"Bearer {alice_token}"}
                    ).json()["data"]["sessionId"]
    assert_error(http.get(f"/api/chat/session/{sid}/messages", headers={"Authorization": f"Bearer {bob_token}"}),
                 403, "42501")
    assert_error(http.post(f"/api/chat/session/{sid}/qa", json={"question": "q", "answer": "a"},
                           headers={"Authorization": f"Bearer {bob_token}"}), 403, "42501")
    # Nor by naming Alice's id as a guest id, or as the session's user beside Bob's token.
    alice_id = alice.json()["data"]["user"]["id"]
    assert_error(http.get(f"/api/chat/session/{sid}/messages", headers={"X-Anonymous-User-Id": alice_id}),
                 401, "28000")
    assert_error(http.post("/api/chat/session", json={"userId": alice_id},
                           headers={"Authorization": f"Bearer {bob_token}"}), 403, "42501")
    assert_error(http.post("/api/chat/session", json={"userId": alice_id}), 401, "28000")


def test_p0002_is_404(http: httpx.Client) -> None:
    assert_error(http.get(f"/api/chat/session/{unique('missing')}/messages",
                          headers={"X-Anonymous-User-Id": unique("g")}), 404, "P0002")


def test_cm001_throttled_login_is_429(http: httpx.Client) -> None:
    address = email()
    for _ in range(5):
        assert_error(http.post("/api/auth/login", json={"email": address, "password": "wrong-pass"}), 401, "28P01")
    assert_error(http.post("/api/auth/login", json={"email": address, "password": "wrong-pass"}), 429, "CM001")


def test_cm002_guest_session_cap_is_429(http: httpx.Client, admin_url: str) -> None:
    with settings_changed(admin_url, guest_sessions_per_hour=2):
        guest = unique("capped")
        for _ in range(2):
            assert http.post("/api/chat/session", json={"userId": guest}).status_code == 201
        assert_error(http.post("/api/chat/session", json={"userId": guest}), 429, "CM002")


# -- bad bodies ----------------------------------------------------------------

@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2", b"\xff\xfe"])
def test_a_body_that_is_not_json_is_a_clear_400(http: httpx.Client, content: bytes) -> None:
    response = http.post("/api/auth/register", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["success"] is False


@pytest.mark.parametrize("body", [
    {"name": 42, "email": "a@b.co", "password": "password123"},
    {"name": "A", "email": ["a@b.co"], "password": "password123"},
    {"name": "A", "email": "a@b.co", "password": None},
    {"name": "A", "email": "a@b.co"},
    {},
    [1, 2, 3],
    "a string",
])
def test_wrong_types_and_missing_fields_are_400_naming_the_field(http: httpx.Client, body: Any) -> None:
    error = assert_error(http.post("/api/auth/register", json=body), 400, "bad_request")
    assert error["hint"]


def test_a_message_with_a_nul_byte_is_400_not_500(http: httpx.Client) -> None:
    guest = unique("nul")
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    response = http.post(f"/api/chat/session/{sid}/messages", json={"content": "a\u0000b"},
                         headers={"X-Anonymous-User-Id": guest})
    assert response.status_code == 400


def test_a_huge_body_is_413(http: httpx.Client) -> None:
    response = http.post("/api/auth/register", content=b'{"name": "' + b"x" * (2 << 20) + b'"}',
                         headers={"Content-Type": "application/json"})
    assert_error(response, 413, "body_too_large")


def test_an_unknown_route_is_an_envelope_404(http: httpx.Client) -> None:
    assert_error(http.get("/api/nothing-here"), 404, "http_404")


# -- the rest of the surface ---------------------------------------------------

def test_refresh_rotates_and_logout_revokes(http: httpx.Client) -> None:
    registered = http.post("/api/auth/register", json={"name": "R", "email": email(), "password": "password123"})
    tokens = registered.json()["data"]
    refreshed = http.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refreshed.status_code == 200
    new = refreshed.json()["data"]
    assert new["token"] != tokens["token"] and new["expiresAt"]
    assert_error(http.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}), 401, "28000")

    fresh = http.post("/api/auth/login", json={"email": registered.json()["data"]["user"]["email"],
                                               "password": "password123"}).json()["data"]["token"]
    out = http.post("/api/auth/logout", headers={"Authorization": f"Bearer {fresh}"})
    assert out.json()["data"] == {"loggedOut": True}
    assert http.post("/api/auth/logout", headers={"Authorization": f"Bearer {fresh}"}).json()["data"] == {
        "loggedOut": False}
    assert_error(http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {fresh}"}), 401, "28000")


def test_qa_pairs_round_trip(http: httpx.Client) -> None:
    guest = unique("qa")
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    headers = {"X-Anonymous-User-Id": guest}
    assert http.post(f"/api/chat/session/{sid}/qa", json={"question": "Q1", "answer": "A1"},
                     headers=headers).status_code == 201
    pairs = http.get(f"/api/chat/session/{sid}/qa", headers=headers).json()["data"]
    assert [(p["question"], p["answer"]) for p in pairs] == [("Q1", "A1")]


def test_healthz_reports_the_schema_version(http: httpx.Client, admin: psycopg.Connection[Any]) -> None:
    expected = admin.execute("SELECT api.schema_version()").fetchone()
    body = http.get("/healthz").json()
    assert body == {"success": True, "data": {"database": "ok", "schemaVersion": expected[0] if expected else None}}


def test_openapi_describes_every_endpoint(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/api/chat/session", "/api/chat/sessions", "/api/chat/session/{session_id}/messages",
        "/api/chat/session/{session_id}/qa", "/api/auth/register", "/api/auth/login",
        "/api/auth/refresh", "/api/auth/logout", "/healthz"}
    assert "post" in paths["/api/chat/session/{session_id}/messages"]
    assert "get" in paths["/api/chat/session/{session_id}/messages"]


def test_the_page_is_served(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200
    assert "localStorage" in http.get("/static/app.js").text
    assert "<form id=\"register\">" in page.text


def test_cors_is_off_by_default(http: httpx.Client) -> None:
    response = http.options("/api/chat/sessions", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in response.headers


def test_no_password_or_token_reaches_the_gateways_log(admin_url: str, caplog: pytest.LogCaptureFixture) -> None:
    password, wrong = "secret-" + uuid.uuid4().hex, "wrong-" + uuid.uuid4().hex
    address = email()
    with caplog.at_level(logging.DEBUG), running_gateway(admin_url, log_level="debug") as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        registered = http.post("/api/auth/register", json={"name": "L", "email": address, "password": password})
        token = registered.json()["data"]["token"]
        refresh = registered.json()["data"]["refreshToken"]
        assert http.post("/api/auth/login", json={"email": address, "password": wrong}).status_code == 401
        http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {token}"})
        http.post("/api/auth/refresh", json={"refreshToken": refresh})
        http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /api/auth/login" in logged, "the access log was not captured: the check would prove nothing"
    for secret in (password, wrong, token, refresh):
        assert secret not in logged


def test_an_unforeseen_failure_is_an_envelope_500(admin_url: str) -> None:
    app = create_app(admin_url)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-looking detail")

    with running_gateway(admin_url, app=app) as url, httpx.Client(base_url=url, timeout=30) as http:
        response = http.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": {
        "code": "internal", "message": "the gateway failed on this request",
        "hint": "Try again; report it if it persists."}}


# -- every input gets an answer in the envelope, never a 5xx (issue 11) -----------------

@pytest.mark.parametrize("query", [
    "limit=2147483648", "limit=0", "limit=1001", "limit=abc", "limit=1.5",
    "before=99999999999999999999", "before=-99999999999999999999", "before=x",
])
def test_out_of_range_and_malformed_numbers_in_the_query_are_400(http: httpx.Client, query: str) -> None:
    guest = unique("q")
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    response = http.get(f"/api/chat/session/{sid}/messages?{query}", headers={"X-Anonymous-User-Id": guest})
    error = assert_error(response, 400, "bad_request")
    assert error["message"].startswith(query.split("=")[0] + ": "), error


@pytest.mark.parametrize(("body", "field"), [
    ('{"userId": "\\ud800"}', "userId"),
    ('{"userId": "a\\udfffb"}', "userId"),
    ('{"context": {"k": "\\ud800"}}', "context"),
    ('{"context": {"\\udc00": 1}}', "context"),
    ('{"context": {"k": ["x", {"y": "\\ud800"}]}}', "context"),
])
def test_a_lone_surrogate_in_json_is_400_naming_the_field(http: httpx.Client, body: str, field: str) -> None:
    response = http.post("/api/chat/session", content=body.encode(), headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "bad_request")
    assert error["message"].startswith(f"{field}: ") and "surrogate" in error["message"], error


def test_a_lone_surrogate_in_any_text_field_is_400(http: httpx.Client) -> None:
    guest = unique("s")
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    for path, body in [(f"/api/chat/session/{sid}/messages", '{"content": "hi \\ud83d"}'),
                       (f"/api/chat/session/{sid}/qa", '{"question": "\\ude00", "answer": "a"}'),
                       ("/api/auth/register", '{"name": "\\ud800", "email": "s@example.com", "password": "p4ssword"}'),
                       ("/api/auth/login", '{"email": "s@example.com", "password": "\\ud800"}'),
                       ("/api/auth/refresh", '{"refreshToken": "\\ud800"}')]:
        response = http.post(path, content=body.encode(),
                             headers={"Content-Type": "application/json", "X-Anonymous-User-Id": guest})
        assert_error(response, 400, "bad_request")


def test_a_nul_inside_context_is_400(http: httpx.Client) -> None:
    response = http.post("/api/chat/session", json={"userId": unique("n"), "context": {"k": "a\u0000b"}})
    assert_error(response, 400, "22P05")


# -- the small things ----------------------------------------------------------------

@pytest.mark.parametrize("header", ["not-bearer-token", "Token abc", "Bearer", "Basic dXNlcjpwYXNz"])
def test_an_authorization_header_that_is_not_bearer_is_401_not_ignored(http: httpx.Client, header: str) -> None:
    for response in (http.get("/api/chat/sessions", headers={"Authorization": header}),
                     http.post("/api/chat/session", json={}, headers={"Authorization": header}),
                     http.post("/api/auth/logout", headers={"Authorization": header})):
        error = assert_error(response, 401, "28000")
        assert error["message"] == "Authorization: expected 'Bearer <access token>'"
        if header != "Bearer":
            assert header.split()[-1] not in response.text, "the header's value was echoed"


def test_a_token_without_bearer_is_refused_even_when_it_is_valid(http: httpx.Client) -> None:
    token = http.post("/api/auth/register", json={"name": "T", "email": email(), "password": "password123"}
                      ).json()["data"]["token"]
    assert_error(http.get("/api/chat/sessions", headers={"Authorization": token}), 401, "28000")
    assert http.get("/api/chat/sessions", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_an_empty_authorization_header_counts_as_none(http: httpx.Client) -> None:
    guest = unique("e")
    made = http.post("/api/chat/session", json={"userId": guest}, headers={"Authorization": ""})
    assert made.status_code == 201
    listed = http.get("/api/chat/sessions", headers={"Authorization": "", "X-Anonymous-User-Id": guest})
    assert [s["sessionId"] for s in listed.json()["data"]] == [made.json()["data"]["sessionId"]]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/api/chat/sessions", "GET"),
    ("PUT", "/api/chat/session/abc/messages", "GET, POST"),
    ("PATCH", "/api/chat/session/abc/qa", "GET, POST"),
    ("GET", "/api/auth/login", "POST"),
    ("OPTIONS", "/api/chat/session", "POST"),
])
def test_a_405_carries_allow_with_every_method_of_the_path(
        http: httpx.Client, method: str, path: str, allow: str) -> None:
    response = http.request(method, path)
    error = assert_error(response, 405, "http_405")
    assert response.headers["Allow"] == allow
    assert error["hint"] == f"Use {allow.replace(', ', ' or ')} on this path."


def test_the_database_out_of_reach_is_503_with_retry_after(admin_url: str) -> None:
    app = create_app(admin_url)

    @app.get("/unreachable")
    async def unreachable() -> None:
        raise psycopg.OperationalError("connection refused")

    with running_gateway(admin_url, app=app) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.get("/unreachable")
    error = assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "connection refused" not in error["message"]


def test_register_answers_like_login_with_the_token_expiry(http: httpx.Client) -> None:
    registered = http.post("/api/auth/register", json={"name": "X", "email": email(), "password": "password123"})
    logged_in = http.post("/api/auth/login", json={"email": registered.json()["data"]["user"]["email"],
                                                   "password": "password123"})
    login_keys = set(logged_in.json()["data"]) - {"expiresAt"}
    assert login_keys <= set(registered.json()["data"])
    assert registered.json()["data"]["expiresAt"]


def test_with_cors_on_a_refused_preflight_is_an_envelope_400(app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMEM_CORS_ORIGINS", "https://app.example")
    with running_gateway(app_url) as url, httpx.Client(base_url=url, timeout=30) as http:
        allowed = http.options("/api/chat/sessions", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-anonymous-user-id"})
        assert allowed.status_code == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        refused = http.options("/api/chat/sessions", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        error = assert_error(refused, 400, "bad_request")
        assert error["message"] == "disallowed CORS origin" and error["hint"]
