"""An honest OpenAPI document (issue 11): every status each route can answer, typed, with the limits.

The statuses come from one place: which SQLSTATEs each api function raises
(chatmem.api_errors.RAISES, checked here against the functions' own
COMMENT ON FUNCTION texts and docs/errors.md) through the SQLSTATE table.
A client generated from the document (openapi-python-client) type-checks
(mypy --strict) against code that uses it, and that code runs against a real
gateway.  Schemathesis (tests/test_schemathesis.py) checks the document
against what the gateway does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chatmem.api_errors import CODES, RAISES
from chatmem.gateway import create_app
from chatmem.gateway.document import statuses
from gateway_server import running_gateway

ERRORS_MD = Path(__file__).parent.parent / "docs" / "errors.md"
VENV_BIN = Path(sys.executable).parent
ROUTES = {
    ("post", "/api/chat/session"): ["create_session"],
    ("get", "/api/chat/sessions"): ["require_user", "require_guest", "list_sessions"],
    ("post", "/api/chat/session/{session_id}/messages"): ["require_user", "require_guest", "add_message"],
    ("get", "/api/chat/session/{session_id}/messages"): ["require_user", "require_guest", "get_messages"],
    ("post", "/api/chat/session/{session_id}/qa"): ["require_user", "require_guest", "add_qa_pair"],
    ("get", "/api/chat/session/{session_id}/qa"): ["require_user", "require_guest", "get_qa_pairs"],
    ("post", "/api/auth/register"): ["register_user"],
    ("post", "/api/auth/login"): ["login"],
    ("post", "/api/auth/refresh"): ["refresh"],
    ("post", "/api/auth/logout"): ["logout"],
    ("get", "/healthz"): ["schema_version"],
    # Accounts (issue 13).
    ("post", "/api/auth/password"): ["change_password"],
    ("post", "/api/auth/password/reset-request"): ["request_password_reset"],
    ("post", "/api/auth/password/reset"): ["reset_password"],
    ("post", "/api/auth/logout-everywhere"): ["logout_everywhere"],
    ("get", "/api/account/export"): ["export_user_data"],
    ("delete", "/api/account"): ["delete_account"],
    ("post", "/api/auth/oidc"): ["link_identity"],
    ("get", "/api/chat/allowance"): ["require_user", "require_guest", "get_allowance"],
    # Conversations a person manages (issue 12).
    ("patch", "/api/chat/session/{session_id}"): ["require_user", "require_guest", "rename_session"],
    ("delete", "/api/chat/session/{session_id}"): ["require_user", "require_guest", "delete_session"],
    ("get", "/api/chat/conversations"): ["require_user", "require_guest", "list_conversations"],
    ("get", "/api/chat/claim-preview"): ["preview_claim"],
    ("get", "/api/account/claims"): ["claim_receipt"],
}
# The routes that read a Bearer token (optional in the document: without one
# the chat routes act as the guest, the account routes answer 401).
BEARER_ROUTES = {"/api/auth/logout", "/api/auth/password", "/api/auth/logout-everywhere", "/api/account/export",
                 "/api/account", "/api/account/claims"}


@pytest.fixture(scope="module")
def document(admin_url: str) -> dict[str, Any]:
    return create_app(admin_url).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


# -- one source for the statuses -------------------------------------------------------


def test_the_raises_table_matches_each_functions_comment_and_the_registry(admin: psycopg.Connection[Any]) -> None:
    comments = dict(admin.execute("""
        SELECT p.proname, obj_description(p.oid, 'pg_proc') FROM pg_proc p
         WHERE p.pronamespace = 'api'::regnamespace""").fetchall())
    registry: dict[str, str] = {}
    for line in ERRORS_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`[0-9A-Z]{5}`", cells[0]):
            registry[cells[0].strip("`")] = cells[2]
    for function, raised in RAISES.items():
        assert function in comments, f"api.{function} is in RAISES but not in the database"
        # The comment's "Errors:" line when it has one: the prose above it may
        # name another function's code (link_identity: "api.login refuses it with 28P01").
        comment = comments[function] or ""
        errors_line = comment.rsplit("Errors:", 1)[1] if "Errors:" in comment else comment
        named = {code for code in CODES if re.search(rf"\b{code}\b", errors_line)}
        by_registry = {code for code, when in registry.items() if f"`{function}`" in when}
        assert raised == named | by_registry, (function, raised, named, by_registry)


def test_every_route_lists_the_statuses_its_functions_can_answer(document: dict[str, Any]) -> None:
    seen = set()
    for method, path, operation in operations(document):
        seen.add((method, path))
        functions = ROUTES[(method, path)]
        documented = {int(s) for s in operation["responses"] if s[0] in "45"}
        for function in functions:
            for sqlstate in RAISES[function]:
                assert CODES[sqlstate].http_status in documented, (method, path, sqlstate)
        assert {500, 503} <= documented, (method, path)
        assert "422" not in operation["responses"], (method, path)
    assert seen == set(ROUTES)


def test_the_statuses_of_the_busiest_routes(document: dict[str, Any]) -> None:
    login = document["paths"]["/api/auth/login"]["post"]["responses"]
    assert sorted(login) == ["200", "400", "401", "413", "429", "500", "503"]
    assert "`CM001`" in login["429"]["description"] and "`too_many_requests`" in login["429"]["description"]
    assert "`CM004`" in login["503"]["description"] and "`25001`" in login["500"]["description"]
    messages = document["paths"]["/api/chat/session/{session_id}/messages"]["get"]["responses"]
    assert sorted(messages) == ["200", "400", "401", "403", "404", "500", "503"]
    assert sorted(document["paths"]["/healthz"]["get"]["responses"]) == ["200", "500", "503"]
    assert statuses(["create_session"], has_input=True, has_body=True, bearer=True) == {
        400: ["22023", "bad_request", "22021", "bad_json", "22P02", "22P05"], 401: ["28000"], 403: ["42501"],
        413: ["body_too_large"], 429: ["CM002"], 500: ["internal"], 503: ["unavailable"]}


# -- typed answers, one envelope for errors ---------------------------------------------


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_answer_has_its_envelope_schema(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            schema = resolve(document, response["content"]["application/json"]["schema"])
            assert schema.get("properties"), (method, path, status, schema)
            success = schema["properties"]["success"]
            if status.startswith("2"):
                assert success == {"type": "boolean", "const": True, "title": "Success"}
                data = resolve(document, schema["properties"]["data"])
                assert data.get("properties") or data.get("items"), (method, path, "untyped data")
            else:
                assert success["const"] is False
                error = resolve(document, schema["properties"]["error"])
                assert set(error["properties"]) == {"code", "message", "hint"}
                assert set(error["required"]) == {"code", "message", "hint"}
            if status in ("429", "503"):
                assert response["headers"]["Retry-After"]["required"] is True


def test_the_document_says_validation_is_400_and_auth_is_optional(document: dict[str, Any]) -> None:
    assert "400 (never 422)" in document["info"]["description"]
    assert "ValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An access token from login, register or refresh."}}
    for method, path, operation in operations(document):
        # The claim preview acts for the guest header only: signing up is what it previews.
        if (path.startswith("/api/chat") and path != "/api/chat/claim-preview") or path in BEARER_ROUTES:
            assert operation["security"] == [{"bearer": []}, {}], (method, path)
        else:
            assert "security" not in operation, (method, path)


# -- the limits the database enforces -----------------------------------------------------


def test_request_schemas_state_the_databases_limits(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    register = schemas["RegisterBody"]
    assert register["required"] == ["name", "email", "password"]
    assert (register["properties"]["name"]["minLength"], register["properties"]["name"]["maxLength"]) == (1, 200)
    assert register["properties"]["email"]["maxLength"] == 254
    assert register["properties"]["password"]["minLength"] == 8
    assert "72 bytes" in register["properties"]["password"]["description"]
    for name in ("question", "answer"):
        assert schemas["QABody"]["properties"][name]["minLength"] == 1
    content = schemas["MessageBody"]["properties"]["content"]
    assert re.fullmatch(content["pattern"], "hello") and not re.fullmatch(content["pattern"], " \n\t")
    assert schemas["MessageBody"]["properties"]["role"]["enum"] == ["user", "assistant", "system"]
    parameters = {p["name"]: p for p in
                  document["paths"]["/api/chat/session/{session_id}/messages"]["get"]["parameters"]}
    assert parameters["session_id"]["schema"]["maxLength"] == 255
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (1, 1000)
    assert parameters["before"]["schema"]["maximum"] == 2**63 - 1
    guest = parameters["X-Anonymous-User-Id"]["schema"]
    assert guest["type"] == "string" and guest["maxLength"] == 255
    # The id pattern is PostgreSQL's rule: not only spaces, no control characters.
    for bad in ("", "   ", "a\tb", "a\x85b"):
        assert not re.fullmatch(guest["pattern"], bad), repr(bad)
    for good in ("b6b8561f-8fcb-4000-892a-457e1fd12f76", "invalid-uuid-format", " x ", "ünïcödé"):
        assert re.fullmatch(guest["pattern"], good), good


def test_empty_strings_and_control_characters_are_refused_as_documented(app_url: str) -> None:
    with running_gateway(app_url) as url, httpx.Client(base_url=url, timeout=30) as http:
        for body in ({"userId": ""}, {"userId": "a\u0007b"}, {"userId": "x" * 256}):
            response = http.post("/api/chat/session", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["code"] == "22023"


# -- a generated client ----------------------------------------------------------------

USAGE = '''
"""Uses the client generated from the gateway's document: every value below is typed."""
import sys
import uuid
from datetime import datetime

from chatmem_gateway.api.auth import register
from chatmem_gateway.api.chat import add_message, create_session, get_messages, list_sessions
from chatmem_gateway.client import AuthenticatedClient
from chatmem_gateway.models import (
    ErrorAnswer, MessageBody, MessagesAnswer, NewSessionAnswer, NewSessionBody, RegisterBody,
    RegistrationAnswer, SessionsAnswer,
)


def main(base_url: str) -> None:
    guest = str(uuid.uuid4())
    # No token yet: an empty Authorization header counts as none.
    with AuthenticatedClient(base_url=base_url, token="", prefix="") as anonymous:
        made = create_session.sync(client=anonymous, body=NewSessionBody(user_id=guest))
        assert isinstance(made, NewSessionAnswer), made
        session_id: str = made.data.session_id
        created: datetime = made.data.created_at
        assert created.tzinfo is not None
        said = add_message.sync(session_id, client=anonymous, body=MessageBody(content="How do refunds work?"),
                                x_anonymous_user_id=guest)
        assert said is not None and not isinstance(said, ErrorAnswer), said
        message_id: int = said.data.id
        assert message_id > 0
        refused = get_messages.sync(session_id, client=anonymous, x_anonymous_user_id=str(uuid.uuid4()))
        assert isinstance(refused, ErrorAnswer) and refused.error.code == "42501", refused
        hint: str | None = refused.error.hint
        assert hint
        email = f"gen-{uuid.uuid4().hex[:10]}@example.com"
        account = register.sync(client=anonymous, body=RegisterBody(
            name="Gen", email=email, password="password123", anonymous_user_id=guest))
        assert isinstance(account, RegistrationAnswer), account
        assert account.data.migrated_sessions == 1
        token: str = account.data.token
    with AuthenticatedClient(base_url=base_url, token=token) as signed_in:
        listed = list_sessions.sync(client=signed_in)
        assert isinstance(listed, SessionsAnswer), listed
        assert [s.session_id for s in listed.data] == [session_id]
        history = get_messages.sync(session_id, client=signed_in, limit=10)
        assert isinstance(history, MessagesAnswer), history
        assert [(m.role.value, m.content) for m in history.data] == [("user", "How do refunds work?")]
    print("generated client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
'''


def test_a_generated_client_type_checks_and_works(app_url: str, tmp_path: Path, fast_bcrypt: None) -> None:
    import json

    with running_gateway(app_url) as url:
        spec = tmp_path / "openapi.json"
        spec.write_text(json.dumps(httpx.get(f"{url}/openapi.json", timeout=30).json()))
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        generated = subprocess.run(
            [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec), "--meta", "none",
             "--output-path", str(tmp_path / "chatmem_gateway"), "--fail-on-warning"],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
        assert generated.returncode == 0, generated.stdout + generated.stderr
        usage = tmp_path / "usage.py"
        usage.write_text(textwrap.dedent(USAGE))
        # The usage is held to --strict; the generator's own code is its
        # business (its client.py trips mypy's newest checks), so only read.
        (tmp_path / "mypy.ini").write_text("[mypy]\n")
        checked = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--follow-imports", "silent", "--no-incremental",
             "--cache-dir", os.devnull, "--config-file", "mypy.ini", "usage.py"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        ran = subprocess.run([sys.executable, "usage.py", url], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path, env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "generated client: ok" in ran.stdout
