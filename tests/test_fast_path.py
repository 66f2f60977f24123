"""The chat routes' fast path (chatmem.gateway.fast_path): it really serves them, and answers as FastAPI does.

Two real gateways (uvicorn, tests/gateway_server.py) on the same test
database, as a login role in chatmem_app only: one as ``chatmem serve`` runs
it (the fast path on) and the reference, ``create_app(fast_path=False)``,
whose FastAPI routes are the contract.  Each request below goes to the
reference and then at once to the fast path, so both see the same rows; the
answers must match in status, the headers a client reads, and the body (the
ids and times a write makes fresh compared by type only).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chatmem.gateway import create_app
from gateway_server import running_gateway

# Small, so that a chunked body past the limit is cheap to send.
MAX_BODY = 4096
FRESH = {"sessionId", "createdAt", "updatedAt", "id", "token", "refreshToken", "expiresAt"}
COMPARED_HEADERS = ("content-type", "content-length", "allow", "retry-after", "location",
                    "access-control-allow-origin", "access-control-expose-headers")
ORIGIN = "https://app.example"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def apps(app_url: str) -> Iterator[dict[str, Any]]:
    """The two apps (fast path on, and off) and their base URLs; a small body limit, CORS on."""
    settings = {"CHATMEM_MAX_BODY_BYTES": str(MAX_BODY), "CHATMEM_CORS_ORIGINS": ORIGIN}
    old = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        fast_app = create_app(app_url, auth_rate_limit=0)
        reference_app = create_app(app_url, auth_rate_limit=0, fast_path=False)
    finally:
        for name, value in old.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    with running_gateway(app_url, app=fast_app) as fast, running_gateway(app_url, app=reference_app) as reference:
        yield {"fast": fast, "reference": reference, "fast_app": fast_app, "reference_app": reference_app}


@pytest.fixture(scope="module")
def clients(apps: dict[str, Any]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (httpx.Client(base_url=apps["reference"], timeout=30, follow_redirects=False) as reference,
          httpx.Client(base_url=apps["fast"], timeout=30, follow_redirects=False) as fast):
        yield reference, fast


def normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (type(v).__name__ if k in FRESH else normalized(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def answer(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {name: response.headers[name] for name in COMPARED_HEADERS if name in response.headers}
    if "location" in headers:  # the two servers' ports differ
        headers["location"] = httpx.URL(headers["location"]).raw_path.decode()
    try:
        body: Any = normalized(response.json())
    except ValueError:
        body = response.content
    if isinstance(body, dict) and body.get("success") is True:
        headers.pop("content-length", None)  # fresh ids and times may differ in length
    return response.status_code, headers, body


def served(apps: dict[str, Any]) -> int:
    return int(apps["fast_app"].state.fast_path.served)


# -- the fast path serves the chat routes, and only them --------------------------------------

def test_the_fast_path_serves_the_six_chat_routes_and_passes_everything_else_on(
        apps: dict[str, Any], clients: tuple[httpx.Client, httpx.Client]) -> None:
    _, fast = clients
    guest = {"X-Anonymous-User-Id": unique("fp")}
    before = served(apps)
    sid = fast.post("/api/chat/session", headers=guest).json()["data"]["sessionId"]
    assert fast.get("/api/chat/sessions", headers=guest).status_code == 200
    assert fast.post(f"/api/chat/session/{sid}/messages", json={"content": "hi"}, headers=guest).status_code == 201
    assert fast.get(f"/api/chat/session/{sid}/messages?limit=5", headers=guest).status_code == 200
    assert fast.post(f"/api/chat/session/{sid}/qa", json={"question": "q", "answer": "a"},
                     headers=guest).status_code == 201
    # Inside the CORS middleware: its answers carry the CORS headers.
    read = fast.get(f"/api/chat/session/{sid}/qa", headers={**guest, "Origin": ORIGIN})
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == ORIGIN
    assert served(apps) == before + 6
    # Not the fast path's: other routes, a wrong method, a trailing slash, HEAD.
    assert fast.get("/healthz").status_code == 200
    assert fast.get("/api/chat/allowance", headers=guest).status_code == 200
    assert fast.delete("/api/chat/sessions").status_code == 405
    assert fast.get("/api/chat/sessions/", headers=guest).status_code == 307
    assert fast.head("/api/chat/sessions", headers=guest).status_code in (200, 405)
    assert fast.put(f"/api/chat/session/{sid}/qa").status_code == 405
    assert served(apps) == before + 6


def test_without_the_fast_path_fastapi_serves_the_routes(apps: dict[str, Any]) -> None:
    assert not hasattr(apps["reference_app"].state, "fast_path")
    with httpx.Client(base_url=apps["reference"], timeout=30) as reference:
        assert reference.get("/api/chat/sessions").status_code == 200


# -- the same answers as FastAPI's routes -----------------------------------------------------

def chunks(size: int) -> Iterator[bytes]:
    sent = 0
    yield b'{"content": "'
    while sent < size:
        yield b"x" * 1024
        sent += 1024
    yield b'"}'


def test_the_fast_path_answers_as_the_fastapi_routes_do(clients: tuple[httpx.Client, httpx.Client]) -> None:
    reference, fast = clients
    guest = unique("cmp")
    other = unique("cmp-other")
    as_guest = {"X-Anonymous-User-Id": guest}
    json_type = {"Content-Type": "application/json"}
    registered = reference.post("/api/auth/register", json={
        "name": "Fast", "email": f"{unique('fp')}@example.com", "password": "password123"}).json()["data"]
    as_user = {"Authorization": f"Bearer {registered['token']}"}
    # One session of the guest's and one of the user's, for both servers to read and write.
    sid = reference.post("/api/chat/session", headers=as_guest).json()["data"]["sessionId"]
    user_sid = reference.post("/api/chat/session", headers=as_user).json()["data"]["sessionId"]
    messages, qa = f"/api/chat/session/{sid}/messages", f"/api/chat/session/{sid}/qa"

    cases: list[tuple[str, str, dict[str, Any]]] = [
        # POST /api/chat/session
        ("POST", "/api/chat/session", {"json": {"userId": guest}}),
        ("POST", "/api/chat/session", {"headers": as_guest}),
        ("POST", "/api/chat/session", {"headers": as_user, "json": {"context": {"topic": "billing", "n": [1, 2.5]}}}),
        ("POST", "/api/chat/session", {"headers": {"Authorization": "Bearer not-a-token"}, "json": {"userId": guest}}),
        ("POST", "/api/chat/session", {}),
        ("POST", "/api/chat/session", {"content": b"{", "headers": json_type}),
        ("POST", "/api/chat/session", {"content": b"{", "headers": {**json_type, "Authorization": "Token x"}}),
        ("POST", "/api/chat/session", {"content": b"\xff\xfe\xfa", "headers": json_type}),
        ("POST", "/api/chat/session", {"content": b'{"userId": "x"}'}),
        ("POST", "/api/chat/session", {"content": b'{"userId": "x"}', "headers": {"Content-Type": "text/plain"}}),
        ("POST", "/api/chat/session", {"content": b'{"userId": "x"}',
                                       "headers": {"Content-Type": "application/vnd.x+json; charset=utf-8"}}),
        ("POST", "/api/chat/session", {"content": b"null", "headers": json_type}),
        ("POST", "/api/chat/session", {"content": b"[]", "headers": json_type}),
        ("POST", "/api/chat/session", {"content": b'{"context": {"a": NaN}}', "headers": json_type}),
        ("POST", "/api/chat/session", {"content": b'{"userId": "\\ud800"}', "headers": json_type}),
        ("POST", "/api/chat/session", {"json": {"userId": 5}}),
        ("POST", "/api/chat/session", {"json": {"context": "not an object"}}),
        ("POST", "/api/chat/session", {"json": {"context": {"k": "a\u0000b"}}}),
        ("POST", "/api/chat/session", {"headers": {"X-Anonymous-User-Id": ""}}),
        ("POST", "/api/chat/session", {"headers": {"X-Anonymous-User-Id": "x" * 300}}),
        ("POST", "/api/chat/session", {"headers": {"Authorization": "Token abc"}, "json": {}}),
        ("POST", "/api/chat/session", {"headers": {"Authorization": ""}, "json": {"userId": guest}}),
        # GET /api/chat/sessions
        ("GET", "/api/chat/sessions", {"headers": as_guest}),
        ("GET", "/api/chat/sessions", {"headers": as_user}),
        ("GET", "/api/chat/sessions", {}),
        ("GET", "/api/chat/sessions", {"headers": {"Authorization": "Bearer not-a-token"}}),
        ("GET", "/api/chat/sessions", {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}),
        ("GET", "/api/chat/sessions?limit=abc", {"headers": as_guest}),
        ("GET", "/api/chat/sessions", {"headers": {**as_guest, "Origin": ORIGIN}}),
        ("GET", "/api/chat/sessions", {"headers": {"Origin": ORIGIN, "Authorization": "Token x"}}),
        # POST and GET .../messages
        ("POST", messages, {"headers": as_guest, "json": {"content": "hello"}}),
        ("POST", messages, {"headers": as_guest, "json": {"content": "again", "role": "user", "extra": 1}}),
        ("POST", messages, {"headers": as_guest}),
        ("POST", messages, {"headers": as_guest, "json": {"content": ""}}),
        ("POST", messages, {"headers": as_guest, "json": {"content": "  "}}),
        ("POST", messages, {"headers": as_guest, "json": {"content": 1}}),
        ("POST", messages, {"headers": as_guest, "json": {"content": "x", "role": "assistant"}}),
        ("POST", messages, {"headers": as_guest, "json": {"content": "x", "role": "robot"}}),
        ("POST", messages, {"headers": as_guest, "json": {"content": "a\u0000b"}}),
        ("POST", messages, {"headers": as_guest, "content": b'{"content": "hi \\ud83d"}'}),
        ("POST", messages, {"headers": {"X-Anonymous-User-Id": other}, "json": {"content": "x"}}),
        ("POST", messages, {"json": {"content": "x"}}),
        ("POST", messages, {"headers": as_user, "json": {"content": "x"}}),
        ("POST", f"/api/chat/session/{user_sid}/messages", {"headers": as_user, "json": {"content": "mine"}}),
        ("POST", "/api/chat/session/no-such-session/messages", {"headers": as_guest, "json": {"content": "x"}}),
        ("POST", messages, {"headers": as_guest, "content": chunks(2 * MAX_BODY)}),
        ("POST", messages, {"headers": as_guest, "content": b'{"content": "' + b"x" * MAX_BODY + b'"}'}),
        ("GET", messages, {"headers": as_guest}),
        ("GET", messages + "?limit=1", {"headers": as_guest}),
        ("GET", messages + "?limit=1&before=999999999999", {"headers": as_guest}),
        ("GET", messages + "?limit=5&limit=abc", {"headers": as_guest}),
        ("GET", messages + "?limit=abc&limit=2", {"headers": as_guest}),
        ("GET", messages + "?limit=", {"headers": as_guest}),
        ("GET", messages + "?limit=0&before=x", {"headers": as_guest}),
        ("GET", messages + "?limit=1.5", {"headers": as_guest}),
        ("GET", messages + "?limit=%2B7", {"headers": as_guest}),
        ("GET", messages + "?limit=2147483648", {"headers": as_guest}),
        ("GET", messages + "?before=99999999999999999999", {"headers": as_guest}),
        ("GET", messages + "?before=-99999999999999999999", {"headers": as_guest}),
        ("GET", messages + "?limit=abc", {"headers": {"Authorization": "Token abc"}}),
        ("GET", messages, {"headers": {"X-Anonymous-User-Id": other}}),
        ("GET", messages, {}),
        ("GET", "/api/chat/session/no-such-session/messages", {"headers": as_guest}),
        ("GET", "/api/chat/session/%20/messages", {"headers": as_guest}),
        ("GET", "/api/chat/session/a%2Fb/messages", {"headers": as_guest}),
        ("GET", "/api/chat/session/%E2%82%AC/messages", {"headers": as_guest}),
        # POST and GET .../qa
        ("POST", qa, {"headers": as_guest, "json": {"question": "q?", "answer": "a."}}),
        ("POST", qa, {"headers": as_guest, "json": {"question": "q?"}}),
        ("POST", qa, {"headers": as_guest, "content": b'{"question": "\\ude00", "answer": "a"}',
                      "json_type": True}),
        ("POST", qa, {"headers": {"X-Anonymous-User-Id": other}, "json": {"question": "q", "answer": "a"}}),
        ("GET", qa, {"headers": as_guest}),
        ("GET", qa, {"headers": as_user}),
        ("GET", qa + "?limit=0", {"headers": as_guest}),
        # Not the fast path's, answered by FastAPI behind it: the same by construction.
        ("DELETE", "/api/chat/sessions", {}),
        ("PUT", messages, {}),
        ("GET", "/api/chat/sessions/", {}),
    ]
    for method, path, options in cases:
        options = dict(options)
        if options.pop("json_type", False):
            options["headers"] = {**options.get("headers", {}), **json_type}
        content = options.get("content")
        if content is not None and not isinstance(content, bytes):
            options["content"] = chunks(2 * MAX_BODY)  # a generator is spent by the first request
        expected = answer(reference.request(method, path, **options))
        if content is not None and not isinstance(content, bytes):
            options["content"] = chunks(2 * MAX_BODY)
        got = answer(fast.request(method, path, **options))
        assert got == expected, f"{method} {path} {options}"
    # The writes happened once per server: the guest's session holds both servers' messages.
    texts = [m["content"] for m in fast.get(messages, headers=as_guest).json()["data"]]
    assert texts == ["hello", "hello", "again", "again"]
