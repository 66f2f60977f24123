"""The conversation routes (issue 12) through real HTTP: the envelope, every refusal with its
status and nothing changed, no IDOR across users and guests, out-of-range queries 400 (never 500),
and messages in an HTTP caller's words."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway_server import running_gateway
from helpers import Conn, World, make_world, run_threads, tag

PASSWORD = "correct horse"
SQL_WORDS = re.compile(r"\bapi\.|\bp_")


@pytest.fixture(scope="module")
def base_url(app_url: str) -> Iterator[str]:
    with running_gateway(app_url) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def world(admin: Conn, fast_bcrypt: None) -> World:
    return make_world(admin, "gwc", PASSWORD)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def guest(gid: str) -> dict[str, str]:
    return {"X-Anonymous-User-Id": gid}


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A refusal in the envelope; ``code`` "bad_request" also admits 22023, the database's word on a
    limit the document states but leaves to the database (an id's length)."""
    assert response.status_code == status, response.text
    body = response.json()
    codes = (code, "22023") if code == "bad_request" else (code,)
    assert body["success"] is False and body["error"]["code"] in codes, body
    error: dict[str, Any] = body["error"]
    assert error["message"] and error["hint"]
    assert not SQL_WORDS.search(error["message"]) and not SQL_WORDS.search(error["hint"]), error
    return error


def snapshot(admin: Conn, *sids: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in admin.execute(
        "SELECT s.session_id, s.title, s.user_id, s.metadata, s.updated_at,"
        "       (SELECT count(*) FROM conversation_messages m WHERE m.session_id = s.session_id)"
        "  FROM conversation_sessions s WHERE s.session_id = ANY(%s) ORDER BY 1", [list(sids)]).fetchall()]


def test_rename_as_user_and_as_guest(http: httpx.Client, admin: Conn, world: World) -> None:
    renamed = data(http.patch(f"/api/chat/session/{world.sa}", json={"title": " Refunds "},
                              headers=bearer(world.alice_token)))
    assert (renamed["sessionId"], renamed["title"], renamed["userId"]) == (world.sa, "Refunds", world.alice)
    assert data(http.patch(f"/api/chat/session/{world.sga}", json={"title": "Plans"},
                           headers=guest(world.ga)))["title"] == "Plans"
    for cleared in (None, "", "   "):
        assert data(http.patch(f"/api/chat/session/{world.sa}", json={"title": cleared},
                               headers=bearer(world.alice_token)))["title"] is None
    assert admin.execute("SELECT title FROM conversation_sessions WHERE session_id = %s",
                         [world.sga]).fetchone() == ("Plans",)


def test_rename_refusals_change_nothing(http: httpx.Client, admin: Conn, world: World) -> None:
    http.patch(f"/api/chat/session/{world.sa}", json={"title": "Kept"}, headers=bearer(world.alice_token))
    before = snapshot(admin, world.sa, world.sga)
    as_alice = bearer(world.alice_token)
    path = f"/api/chat/session/{world.sa}"
    assert refused(http.patch(path, json={"title": "t" * 201}, headers=as_alice), 400, "22023")["message"] \
        .startswith("title: is 201 characters long")
    assert refused(http.patch(path, json={"title": "a\tb"}, headers=as_alice), 400, "22023")["message"] \
        .startswith("title: contains control characters")
    refused(http.patch(path, json={"title": 5}, headers=as_alice), 400, "bad_request")
    refused(http.patch(path, json={}, headers=as_alice), 400, "bad_request")
    refused(http.patch(path, content=b"{", headers={**as_alice, "Content-Type": "application/json"}), 400,
            "bad_json")
    refused(http.patch(path, json={"title": "x\u0000y"}, headers=as_alice), 400, "22021")
    refused(http.patch(f"/api/chat/session/gwc-missing-{tag()}", json={"title": "x"}, headers=as_alice), 404,
            "P0002")
    refused(http.patch(path, json={"title": "x"}, headers={"Authorization": "Bearer nope"}), 401, "28000")
    assert snapshot(admin, world.sa, world.sga) == before


def intruders(world: World) -> list[tuple[str, dict[str, str], int, str]]:
    """(session, headers, status, code) for every caller who is not the session's owner."""
    return [
        (world.sa, bearer(world.bob_token), 403, "42501"),
        (world.sa, guest(world.ga), 403, "42501"),
        (world.sa, {}, 403, "42501"),
        (world.sa, guest(world.alice), 401, "28000"),  # a header naming an account proves nothing
        (world.sga, guest(world.gb), 403, "42501"),
        (world.sga, bearer(world.alice_token), 403, "42501"),
        (world.sga, {}, 403, "42501"),
    ]


def test_no_idor_through_rename_delete_or_the_list(http: httpx.Client, admin: Conn, world: World) -> None:
    before = snapshot(admin, world.sa, world.sga)
    for sid, headers, status, code in intruders(world):
        refused(http.patch(f"/api/chat/session/{sid}", json={"title": "pwned"}, headers=headers), status, code)
        refused(http.delete(f"/api/chat/session/{sid}", headers=headers), status, code)
    assert snapshot(admin, world.sa, world.sga) == before
    mine = {"alice": bearer(world.alice_token), "bob": bearer(world.bob_token), "ga": guest(world.ga),
            "gb": guest(world.gb), "nobody": {}}
    listed = {who: [c["sessionId"] for c in data(http.get("/api/chat/conversations", headers=h))]
              for who, h in mine.items()}
    assert listed == {"alice": [world.sa], "bob": [], "ga": [world.sga], "gb": [], "nobody": []}
    refused(http.get("/api/chat/conversations", headers=guest(world.alice)), 401, "28000")


def test_delete_as_user_and_as_guest(http: httpx.Client, admin: Conn, world: World) -> None:
    assert data(http.delete(f"/api/chat/session/{world.sa}", headers=bearer(world.alice_token))) == {
        "deleted": True}
    assert data(http.delete(f"/api/chat/session/{world.sga}", headers=guest(world.ga))) == {"deleted": True}
    assert snapshot(admin, world.sa, world.sga) == []
    refused(http.delete(f"/api/chat/session/{world.sga}", headers=guest(world.ga)), 404, "P0002")
    refused(http.delete(f"/api/chat/session/{'x' * 256}", headers=guest(world.ga)), 400, "bad_request")


def test_the_list_pages_with_before_and_before_id(http: httpx.Client, admin: Conn) -> None:
    gid = f"gwc-pager-{tag()}"
    sids = []
    for _ in range(5):
        sids.append(data(http.post("/api/chat/session", headers=guest(gid)), 201)["sessionId"])
    http.post(f"/api/chat/session/{sids[0]}/messages", json={"content": "hello " * 50}, headers=guest(gid))
    admin.execute("UPDATE conversation_sessions SET updated_at = %s WHERE session_id = ANY(%s)",
                  [datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), sids[1:4]])  # ties
    everything = data(http.get("/api/chat/conversations", params={"limit": 200}, headers=guest(gid)))
    assert sorted(c["sessionId"] for c in everything) == sorted(sids)
    first = next(c for c in everything if c["sessionId"] == sids[0])
    assert first["messageCount"] == 1 and len(first["lastMessage"]) == 200 and first["title"] is None
    walked: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while page := data(http.get("/api/chat/conversations", params=params, headers=guest(gid))):
        walked += [c["sessionId"] for c in page]
        params = {"limit": 2, "before": page[-1]["updatedAt"], "beforeId": page[-1]["sessionId"]}
    assert walked == [c["sessionId"] for c in everything]


@pytest.mark.parametrize("params,code", [
    ({"limit": 0}, "bad_request"), ({"limit": 201}, "bad_request"), ({"limit": -1}, "bad_request"),
    ({"limit": 2**31}, "bad_request"), ({"limit": 10**30}, "bad_request"), ({"limit": "ten"}, "bad_request"),
    ({"before": "yesterday"}, "bad_request"), ({"before": "2026-02-30T00:00:00Z"}, "bad_request"),
    ({"before": "2026-11-30T24:00:00Z"}, "bad_request"), ({"before": "2026-11-30T12:00:00"}, "bad_request"),
    ({"before": "2026-11-30T12:00:00+24:00"}, "bad_request"),
    ({"before": "2026-11-30T12:00:00Z", "beforeId": "x" * 256}, "bad_request"),
    ({"before": "2026-11-30T12:00:00Z", "beforeId": "   "}, "bad_request"),
    ({"beforeId": "session_1"}, "22023"),
])
def test_out_of_range_queries_are_400(http: httpx.Client, world: World, params: dict[str, Any],
                                      code: str) -> None:
    error = refused(http.get("/api/chat/conversations", params=params, headers=bearer(world.alice_token)),
                    400, code)
    assert error["message"].split(":")[0] in ("limit", "before", "beforeId"), error


def test_edge_times_are_accepted(http: httpx.Client, world: World) -> None:
    for moment in ("0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999-23:59", "2999-11-30T12:00:00.5Z"):
        listed = data(http.get("/api/chat/conversations", params={"before": moment},
                               headers=bearer(world.alice_token)))
        assert [c["sessionId"] for c in listed] == ([] if moment.startswith("0001") else [world.sa])
        assert data(http.get("/api/account/claims", params={"since": moment},
                             headers=bearer(world.alice_token))) == []  # alice claimed nothing


def test_claim_preview_then_the_accounts_claims(http: httpx.Client, world: World) -> None:
    preview = data(http.get("/api/chat/claim-preview", headers=guest(world.ga)))
    assert [(p["sessionId"], p["messageCount"], p["qaCount"]) for p in preview] == [(world.sga, 1, 1)]
    assert data(http.get("/api/chat/claim-preview", headers=guest(world.gb))) == []
    assert data(http.get("/api/chat/claim-preview")) == []
    refused(http.get("/api/chat/claim-preview", headers=guest(world.alice)), 401, "28000")
    refused(http.get("/api/chat/claim-preview", headers=guest("g" * 256)), 400, "bad_request")

    reg = data(http.post("/api/auth/register", json={
        "name": "Dora", "email": f"gwc-dora-{tag()}@example.test", "password": PASSWORD,
        "anonymousUserId": world.ga}), 201)
    assert reg["migratedSessions"] == 1
    assert data(http.get("/api/chat/claim-preview", headers=guest(world.ga))) == []
    claims = data(http.get("/api/account/claims", headers=bearer(reg["token"])))
    assert [(c["sessionId"], c["anonymousUserId"], c["method"]) for c in claims] == [
        (world.sga, world.ga, "register")]
    assert data(http.get("/api/account/claims", params={"since": "2999-01-01T00:00:00Z"},
                         headers=bearer(reg["token"]))) == []
    assert data(http.get("/api/account/claims", headers=bearer(world.bob_token))) == []
    refused(http.get("/api/account/claims"), 401, "28000")
    refused(http.get("/api/account/claims", headers=guest(world.ga)), 401, "28000")
    refused(http.get("/api/account/claims", headers=bearer("nope")), 401, "28000")
    refused(http.get("/api/account/claims", params={"since": "soon"}, headers=bearer(reg["token"])), 400,
            "bad_request")


def test_cors_lets_a_page_patch_and_delete(app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMEM_CORS_ORIGINS", "https://app.example")
    with running_gateway(app_url) as url:
        for method in ("PATCH", "DELETE"):
            answer = httpx.options(f"{url}/api/chat/session/s1", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "Content-Type, X-Anonymous-User-Id"})
            assert answer.status_code == 200, answer.text
            assert method in answer.headers["access-control-allow-methods"]
        wrong = httpx.options(f"{url}/api/chat/session/s1", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "PUT"})
        assert wrong.status_code == 400


def test_a_wrong_method_on_the_session_path_lists_patch_and_delete(http: httpx.Client) -> None:
    answer = http.put("/api/chat/session/s1")
    assert answer.status_code == 405
    assert {"PATCH", "DELETE"} <= {m.strip() for m in answer.headers["allow"].split(",")}


def test_parallel_deletes_and_a_sign_up_over_http_leave_each_session_deleted_once_or_claimed_whole(
        base_url: str, admin: Conn, fast_bcrypt: None) -> None:
    """Each round: a guest's session gets 6 DELETEs as the guest and one sign-up claiming the
    guest, on separate connections released together by a barrier.  At most one DELETE
    answers deleted; the rest are 404 (deleted already) or 403 (claimed first), never a 5xx;
    the session ends deleted (unclaimed, no audit row) or claimed whole (its message kept)."""
    outcomes = {"deleted": 0, "claimed": 0}
    for round_ in range(4):
        gid = f"gwc-race-{tag()}"
        with httpx.Client(base_url=base_url, timeout=30) as setup:
            sid = data(setup.post("/api/chat/session", headers=guest(gid)), 201)["sessionId"]
            data(setup.post(f"/api/chat/session/{sid}/messages", json={"content": "hi"}, headers=guest(gid)), 201)
        answers = race_round(base_url, gid, sid)
        register = next(a for a in answers if a.request.method == "POST")
        deletes = [a for a in answers if a.request.method == "DELETE"]
        migrated = data(register, 201)["migratedSessions"]
        won = [a for a in deletes if a.status_code == 200]
        assert len(won) <= 1 and all(a.json()["data"] == {"deleted": True} for a in won), round_
        assert all(a.status_code in (200, 403, 404) for a in deletes), [a.text for a in deletes]
        left = admin.execute(
            "SELECT s.user_id, s.metadata ? 'anonymousUserId',"
            "       (SELECT count(*) FROM conversation_messages m WHERE m.session_id = s.session_id)"
            "  FROM conversation_sessions s WHERE s.session_id = %s", [sid]).fetchall()
        audit = admin.execute("SELECT count(*) FROM session_claims WHERE session_id = %s", [sid]).fetchone()
        if won:
            outcomes["deleted"] += 1
            assert (left, migrated, audit) == ([], 0, (0,)), round_
            assert all(a.status_code == 404 for a in deletes if a is not won[0]), round_
        else:
            outcomes["claimed"] += 1
            assert migrated == 1 and audit == (1,) and len(left) == 1, round_
            assert str(left[0][0]) == register.json()["data"]["user"]["id"] and left[0][1:] == (False, 1)
            assert all(a.status_code == 403 for a in deletes), round_
    assert sum(outcomes.values()) == 4


def race_round(base_url: str, gid: str, sid: str) -> list[httpx.Response]:
    """A sign-up claiming ``gid`` and 6 DELETEs of ``sid`` as ``gid``, released together; every answer."""
    barrier = threading.Barrier(7)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def call(n: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            client.get("/healthz")  # the connection is open before the barrier
            barrier.wait()
            if n == 0:
                answer = client.post("/api/auth/register", json={
                    "name": "Racer", "email": f"{gid}@example.test", "password": PASSWORD,
                    "anonymousUserId": gid})
            else:
                answer = client.delete(f"/api/chat/session/{sid}", headers=guest(gid))
            with lock:
                answers.append(answer)

    run_threads(7, call)
    return answers
