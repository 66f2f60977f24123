"""The gateway's limits over real HTTP: the per-address auth rate limit, and Retry-After on 429 and 503.

Every gateway here is a real uvicorn (tests/gateway_server.py) on the real
test database, connected as a login role in chatmem_app only (``app_url``).
The limiter's own bookkeeping (expiry, the cap, the window) is also checked
directly, with a clock the test moves.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from chatmem.gateway import create_app
from chatmem.gateway.ratelimit import ClientAddress, SlidingWindow
from gateway_server import running_gateway
from helpers import connect, run_threads, settings_changed

SLOT_CLASS = "hashtext('chatmem hash slot')"


def email() -> str:
    return f"rl-{uuid.uuid4().hex[:10]}@example.com"


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"] and body["error"]["hint"]
    return body["error"]  # type: ignore[no-any-return]


def retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After")
    assert value is not None, f"no Retry-After on a {response.status_code}"
    assert value.isdigit(), value
    return int(value)


def bad_refresh(http: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    """The cheapest auth request that reaches the database: an unknown refresh token (401)."""
    return http.post("/api/auth/refresh", json={"refreshToken": "not-a-token"}, headers=headers)


def users_named(admin: psycopg.Connection[Any], address: str) -> int:
    found = admin.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", [address]).fetchone()
    assert found is not None
    return int(found[0])


def failures_of(admin: psycopg.Connection[Any], address: str) -> int:
    found = admin.execute("SELECT count(*) FROM public.login_failures WHERE email = lower(%s)",
                          [address]).fetchone()
    assert found is not None
    return int(found[0])


@pytest.fixture
def limited(app_url: str) -> Iterator[str]:
    """A gateway of its own (so a count of its own) with the default limit, 30 a minute."""
    with running_gateway(app_url, auth_rate_limit=30) as url:
        yield url


# -- the limit over HTTP --------------------------------------------------------

def test_the_31st_auth_request_in_a_minute_is_429_and_reaches_no_database(
        limited: str, admin: psycopg.Connection[Any]) -> None:
    with httpx.Client(base_url=limited, timeout=30) as http:
        for _ in range(29):
            assert_envelope(bad_refresh(http), 401, "28000")
        # register, login and refresh share one count.
        wrong = email()
        assert_envelope(http.post("/api/auth/login", json={"email": wrong, "password": "wrong-pass"}),
                        401, "28P01")
        assert failures_of(admin, wrong) == 1

        address = email()
        refused = http.post("/api/auth/register", json={"name": "R", "email": address, "password": "password123"})
        error = assert_envelope(refused, 429, "too_many_requests")
        assert "30" in error["message"]
        assert 1 <= retry_after(refused) <= 60
        assert users_named(admin, address) == 0, "a refused register reached the database"

        refused_login = http.post("/api/auth/login", json={"email": wrong, "password": "wrong-pass"})
        assert_envelope(refused_login, 429, "too_many_requests")
        assert failures_of(admin, wrong) == 1, "a refused login reached the database"
        assert_envelope(bad_refresh(http), 429, "too_many_requests")

        # Not limited: logout (see ratelimit.AUTH_PATHS) and the other routes.
        assert http.post("/api/auth/logout", headers={"Authorization": "Bearer none"}).status_code == 200
        assert http.post("/api/chat/session", json={"userId": f"rl-{uuid.uuid4().hex}"}).status_code == 201
        assert http.get("/healthz").status_code == 200


def test_60_requests_at_once_from_one_address_let_exactly_30_through(limited: str) -> None:
    count = 60
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def one(_: int) -> None:
        # A connection of its own, opened before the barrier, so the 60
        # POSTs reach the server together.
        with httpx.Client(base_url=limited, timeout=60) as http:
            assert http.get("/healthz").status_code == 200
            barrier.wait(timeout=30)
            statuses.append(bad_refresh(http).status_code)

    run_threads(count, one)
    # 401: passed the limiter and answered by the database; 429: refused before it.
    assert Counter(statuses) == {401: 30, 429: 30}


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(app_url: str) -> None:
    # A proxy list that does not name the peer (127.0.0.1): its header is the client's own words.
    with running_gateway(app_url, auth_rate_limit=3, trusted_proxies=["10.0.0.0/8"]) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        for n in range(3):
            assert bad_refresh(http, {"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 401
        for spoofed in ("198.51.100.200", "2001:db8::1", "10.0.0.1", "198.51.100.9, 198.51.100.10"):
            refused = bad_refresh(http, {"X-Forwarded-For": spoofed})
            assert_envelope(refused, 429, "too_many_requests")
            retry_after(refused)
        assert_envelope(bad_refresh(http), 429, "too_many_requests")


def test_x_forwarded_for_from_a_trusted_proxy_gives_each_client_its_own_count(app_url: str) -> None:
    with running_gateway(app_url, auth_rate_limit=3, trusted_proxies=["127.0.0.1", "10.0.0.0/8"]) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        alice = {"X-Forwarded-For": "203.0.113.7"}
        bob = {"X-Forwarded-For": "203.0.113.8"}
        for _ in range(3):
            assert bad_refresh(http, alice).status_code == 401
        assert_envelope(bad_refresh(http, alice), 429, "too_many_requests")
        # Alice writing her own X-Forwarded-For gains nothing: the proxy
        # appends her real address, the right-most that is not a trusted proxy.
        assert_envelope(bad_refresh(http, {"X-Forwarded-For": "192.0.2.1, 203.0.113.7"}), 429,
                        "too_many_requests")
        # Nor through a second trusted proxy (10.1.2.3) in the chain.
        assert_envelope(bad_refresh(http, {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}), 429,
                        "too_many_requests")
        # Bob, behind the same proxy, has a count of his own; so has the proxy itself.
        for _ in range(3):
            assert bad_refresh(http, bob).status_code == 401
        assert_envelope(bad_refresh(http, bob), 429, "too_many_requests")
        assert bad_refresh(http).status_code == 401
        # IPv6 clients count per /64.
        for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3"):
            assert bad_refresh(http, {"X-Forwarded-For": host}).status_code == 401
        assert_envelope(bad_refresh(http, {"X-Forwarded-For": "2001:db8::ffff"}), 429, "too_many_requests")
        assert bad_refresh(http, {"X-Forwarded-For": "2001:db8:0:1::1"}).status_code == 401


def test_the_settings_come_from_the_environment(app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMEM_AUTH_RATE_LIMIT", "2")
    monkeypatch.setenv("CHATMEM_TRUSTED_PROXIES", " 127.0.0.1/32 , ::1 ")
    monkeypatch.setenv("CHATMEM_CORS_ORIGINS", "https://app.example")
    with running_gateway(app_url, auth_rate_limit=None) as url, httpx.Client(base_url=url, timeout=30) as http:
        carol = {"X-Forwarded-For": "203.0.113.20", "Origin": "https://app.example"}
        for _ in range(2):
            assert bad_refresh(http, carol).status_code == 401
        refused = bad_refresh(http, carol)
        assert_envelope(refused, 429, "too_many_requests")
        # A page on another origin can read the 429 and its Retry-After.
        assert refused.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "retry-after" in refused.headers["Access-Control-Expose-Headers"].lower()
        assert bad_refresh(http, {"X-Forwarded-For": "203.0.113.21"}).status_code == 401


def test_a_limit_of_0_turns_it_off_and_bad_settings_fail_at_startup(
        app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_gateway(app_url, auth_rate_limit=0) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert Counter(bad_refresh(http).status_code for _ in range(40)) == {401: 40}
    assert create_app(app_url, trusted_proxies="10.0.0.0/8, ::1") is not None  # one string, as in the variable
    with pytest.raises(ValueError, match="neither an IP address"):
        create_app(app_url, trusted_proxies=["10.0.0.0/33"])
    with pytest.raises(ValueError, match="auth_rate_limit"):
        create_app(app_url, auth_rate_limit=-1)
    monkeypatch.setenv("CHATMEM_AUTH_RATE_LIMIT", "thirty")
    with pytest.raises(ValueError, match="CHATMEM_AUTH_RATE_LIMIT"):
        create_app(app_url)


# -- Retry-After on the SQL API's 429 and 503 ------------------------------------

def test_cm004_hashing_busy_is_503_with_retry_after_and_counts_no_failure(
        admin_url: str, app_url: str, admin: psycopg.Connection[Any]) -> None:
    address, newcomer = email(), email()
    with settings_changed(admin_url, max_concurrent_hashes=1, hash_wait="0"), connect(admin_url) as holder, \
            running_gateway(app_url) as url, httpx.Client(base_url=url, timeout=30) as http:
        with holder.transaction():
            # The one hashing slot, held by another session until its transaction ends.
            holder.execute(f"SELECT pg_advisory_xact_lock({SLOT_CLASS}, 0)")
            busy = http.post("/api/auth/login", json={"email": address, "password": "password123"})
            error = assert_envelope(busy, 503, "CM004")
            assert error["hint"] == "Try again in a moment."
            assert retry_after(busy) == 1
            assert failures_of(admin, address) == 0

            busy = http.post("/api/auth/register", json={"name": "N", "email": newcomer, "password": "password123"})
            assert_envelope(busy, 503, "CM004")
            assert retry_after(busy) == 1
            assert users_named(admin, newcomer) == 0
        # The slot is free again: the same login is checked (and fails) now.
        assert_envelope(http.post("/api/auth/login", json={"email": address, "password": "password123"}),
                        401, "28P01")
        assert failures_of(admin, address) == 1


def test_cm001_and_cm002_carry_retry_after(admin_url: str, app_url: str, fast_bcrypt: None) -> None:
    with running_gateway(app_url) as url, httpx.Client(base_url=url, timeout=30) as http:
        address = email()
        for _ in range(5):
            assert http.post("/api/auth/login", json={"email": address, "password": "wrong"}).status_code == 401
        throttled = http.post("/api/auth/login", json={"email": address, "password": "wrong"})
        assert_envelope(throttled, 429, "CM001")
        assert retry_after(throttled) == 60

        with settings_changed(admin_url, guest_sessions_per_hour=1):
            guest = f"rl-guest-{uuid.uuid4().hex}"
            assert http.post("/api/chat/session", json={"userId": guest}).status_code == 201
            capped = http.post("/api/chat/session", json={"userId": guest})
            assert_envelope(capped, 429, "CM002")
            assert retry_after(capped) == 60

        # Errors without a wait to suggest carry no header.
        assert "Retry-After" not in http.post("/api/auth/refresh", json={"refreshToken": "x"}).headers


# -- the limiter's bookkeeping, with a clock the test moves -------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_exactly() -> None:
    clock = Clock()
    limiter = SlidingWindow(3, clock=clock)
    for t in (0.0, 10.0, 20.0):
        clock.now = 1000.0 + t
        assert limiter.acquire("a") == 0.0
    clock.now = 1030.0
    assert limiter.acquire("a") == pytest.approx(30.0)  # until the admission at t=0 is a minute old
    assert limiter.acquire("b") == 0.0  # another address: its own count
    clock.now = 1060.0
    assert limiter.acquire("a") == 0.0  # took t=0's place
    assert limiter.acquire("a") == pytest.approx(10.0)  # refusals are not counted: t=10 is next
    clock.now = 1070.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(10.0)


def test_idle_addresses_are_forgotten_and_the_table_is_capped() -> None:
    clock = Clock()
    limiter = SlidingWindow(30, max_addresses=1000, clock=clock)
    for n in range(5000):
        limiter.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 1000
    clock.now += 60
    limiter.acquire("192.0.2.1")
    assert len(limiter) == 1, "addresses idle for a minute were kept"
    # The least recently admitted goes first: an active address keeps its count.
    for _ in range(30):
        assert limiter.acquire("203.0.113.1") == 0.0
    for n in range(999):  # 1001 addresses: one too many
        limiter.acquire(f"10.1.{n // 256}.{n % 256}")
    assert len(limiter) == 1000
    assert "192.0.2.1" not in limiter._keys
    assert limiter.acquire("203.0.113.1") > 0


def test_the_count_is_exact_across_threads() -> None:
    limiter = SlidingWindow(100, clock=Clock())
    admitted: list[int] = []

    def hammer(_: int) -> None:
        admitted.append(sum(limiter.acquire("a") == 0.0 for _ in range(1000)))

    run_threads(8, hammer)
    assert sum(admitted) == 100


@pytest.mark.parametrize(("trusted", "client", "forwarded", "key"), [
    ((), ("192.0.2.1", 5000), "203.0.113.1", "192.0.2.1"),
    (("192.0.2.1",), ("192.0.2.1", 5000), "203.0.113.1", "203.0.113.1"),
    (("192.0.2.1",), ("192.0.2.1", 5000), None, "192.0.2.1"),
    (("192.0.2.1",), ("192.0.2.1", 5000), " , ", "192.0.2.1"),
    (("192.0.2.1",), ("192.0.2.1", 5000), "198.51.100.1, 203.0.113.1:4711", "203.0.113.1"),
    (("192.0.2.1",), ("192.0.2.1", 5000), "[2001:db8::5]:443", "2001:db8::/64"),
    (("192.0.2.1",), ("192.0.2.1", 5000), "::ffff:203.0.113.9", "203.0.113.9"),
    (("192.0.2.1",), ("192.0.2.1", 5000), "unknown", "?unknown"),
    (("192.0.2.0/24",), ("192.0.2.1", 5000), "192.0.2.7, 192.0.2.8", "192.0.2.7"),
    (("2001:db8::/32",), ("2001:db8::9", 5000), "203.0.113.1", "203.0.113.1"),
    ((), ("2001:db8:1:2:3:4:5:6", 5000), None, "2001:db8:1:2::/64"),
    ((), None, "203.0.113.1", "unix"),
    (("unix",), None, "203.0.113.1", "203.0.113.1"),
])
def test_the_client_address(trusted: tuple[str, ...], client: tuple[str, int] | None,
                            forwarded: str | None, key: str) -> None:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    assert ClientAddress(trusted)({"type": "http", "client": client, "headers": headers}) == key
