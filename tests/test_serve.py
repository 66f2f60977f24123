"""``chatmem serve`` as a server (issue 11, items 1 and 6): worker processes, TCP_NODELAY on
every connection whatever made the listening socket, one write per response, and a one-line
refusal to start on a database without the chatmem API."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from chatmem.gateway import server
from gateway_server import free_port

SYS_PIDFD_GETFD = 438  # Linux >= 5.6, the same number on every architecture


class Serve:
    """A ``chatmem serve`` subprocess on the test database."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatmem", "serve", "--port", str(self.port), *args],
            env={**environment, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"chatmem serve exited: {self.stop()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"chatmem serve did not answer: {self.stop()}")

    def workers(self) -> list[int]:
        """The worker processes: the children of chatmem serve that are not multiprocessing's tracker."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children
                if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


@pytest.fixture(scope="module")
def two_workers(app_url: str) -> Iterator[Serve]:
    served = Serve("--database-url", app_url, "--workers", "2", "--pool-size", "2")
    try:
        served.wait_ready()
        yield served
    finally:
        served.stop()


def _peer_socket_option(pids: list[int], peer: tuple[str, int], level: int, option: int) -> int:
    """The option's value on the server's end of ``peer``'s connection, read from inside the
    worker that holds it (pidfd_getfd, as root or the same user)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in pids:
        pidfd = os.pidfd_open(pid)
        try:
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                        continue
                except OSError:
                    continue
                fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
                if fd < 0:
                    raise OSError(ctypes.get_errno(), "pidfd_getfd")
                sock = socket.socket(fileno=fd)
                try:
                    if sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM and \
                            sock.getpeername() == peer:
                        return sock.getsockopt(level, option)
                except OSError:  # a listening or unconnected socket
                    pass
                finally:
                    sock.close()  # our duplicate only
        finally:
            os.close(pidfd)
    raise AssertionError(f"no worker holds the connection from {peer}")


def test_serve_starts_the_workers_asked_for_and_each_answers(two_workers: Serve) -> None:
    workers = two_workers.workers()
    assert len(workers) == 2, workers
    # Fresh connections until both workers have answered one: each has its own pool.
    served_by: set[int] = set()
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", two_workers.port)) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200 ")
            held = [pid for pid in workers if _holds(pid, client.getsockname())]
            served_by.update(held)
        answer = httpx.post(f"{two_workers.base_url}/api/chat/session", json={"userId": str(uuid.uuid4())})
        assert answer.status_code == 201, answer.text
        if served_by == set(workers):
            break
    assert served_by == set(workers)


def _holds(pid: int, peer: tuple[str, int]) -> bool:
    try:
        _peer_socket_option([pid], peer, socket.SOL_SOCKET, socket.SO_TYPE)
    except AssertionError:
        return False
    return True


def test_every_keep_alive_connection_of_a_worker_has_nagle_off(two_workers: Serve) -> None:
    """The 44 ms stall: with workers > 1 uvicorn's own socket left Nagle on."""
    with socket.create_connection(("127.0.0.1", two_workers.port)) as client:
        for _ in range(3):  # keep-alive: the same connection answers again
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200 ")
        nodelay = _peer_socket_option(two_workers.workers(), client.getsockname(),
                                      socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert nodelay != 0


async def _asgi_ok(scope: dict[str, object], receive: object, send: object) -> None:
    raise AssertionError("no request is sent")


def test_the_cause_uvicorns_worker_socket_leaves_nagle_on_and_our_protocol_turns_it_off() -> None:
    """The listening socket uvicorn binds for its workers, served once by uvicorn's own
    HTTP protocol and once by ours: only ours turns Nagle off on the accepted connection."""

    async def accepted_nodelay(protocol: type[asyncio.Protocol]) -> int:
        config = uvicorn.Config(app=_asgi_ok, host="127.0.0.1", port=0, workers=2, lifespan="off")
        listener = config.bind_socket()  # exactly as uvicorn's supervisor does for workers > 1
        made: list[asyncio.Protocol] = []

        def factory() -> asyncio.Protocol:
            made.append(protocol(config=config, server_state=ServerState(), app_state={}))  # type: ignore[call-arg]
            return made[-1]

        loop = asyncio.get_running_loop()
        srv = await loop.create_server(factory, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        for _ in range(200):
            if made and getattr(made[0], "transport", None) is not None:
                break
            await asyncio.sleep(0.01)
        sock = made[0].transport.get_extra_info("socket")  # type: ignore[attr-defined]
        value = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        srv.close()
        return value

    assert asyncio.run(accepted_nodelay(HttpToolsProtocol)) == 0, "uvicorn's worker socket: Nagle on"
    assert asyncio.run(accepted_nodelay(server.NoDelayHTTPProtocol)) != 0


class _Recorded:
    """A transport that records what is written to it (the layer under test is above it)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_response_head_leaves_with_its_body_in_one_write() -> None:
    async def scenario() -> list[list[bytes]]:
        seen = []
        under = _Recorded()
        transport = server._OneWritePerResponse(under)  # type: ignore[arg-type]
        head = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n"
        transport.write(head)
        assert under.writes == []  # held for the body
        transport.write(b"{}")
        seen.append(under.writes[:])  # one write: head and body
        await asyncio.sleep(0)
        seen.append(under.writes[:])  # nothing left to flush
        # A streamed response's head does not wait for a body that comes later.
        transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await asyncio.sleep(0)
        seen.append(under.writes[1:])
        # 100 Continue goes at once; a held head is written before the connection closes.
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        transport.close()
        seen.append(under.writes[2:])
        assert under.closed and transport.get_extra_info("peername") == "info:peername"
        return seen

    one, after_turn, streamed, at_close = asyncio.run(scenario())
    assert one == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]
    assert after_turn == one
    assert streamed == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    assert at_close == [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"]


def test_pool_size_and_auth_limit_are_split_between_workers() -> None:
    assert [server.pool_per_worker(10, w) for w in (1, 2, 3, 4, 20)] == [10, 5, 4, 3, 1]
    assert [server.auth_limit_per_worker(30, w) for w in (1, 2, 4, 40)] == [30, 15, 7, 1]
    assert server.auth_limit_per_worker(0, 2) == 0  # no limit stays no limit
    assert server.default_workers() == len(os.sched_getaffinity(0))


def test_workers_together_admit_at_most_the_auth_limit(app_url: str) -> None:
    """Each worker counts in its own memory: with 2 workers and a limit of 4 a minute, an
    address spreading logins over fresh connections (so over both workers) gets 4, not 8."""
    served = Serve("--database-url", app_url, "--workers", "2", "--pool-size", "2",
                   env={"CHATMEM_AUTH_RATE_LIMIT": "4"})
    try:
        served.wait_ready()
        statuses = []
        for _ in range(16):
            with httpx.Client(base_url=served.base_url, timeout=30) as fresh:  # a new connection each
                statuses.append(fresh.post("/api/auth/login", json={
                    "email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-password"}
                ).status_code)
    finally:
        served.stop()
    assert statuses.count(429) == 16 - statuses.count(401), statuses
    assert 2 <= statuses.count(401) <= 4, statuses


# -- item 6: refuse at once, in one line --------------------------------------

def test_serve_refuses_in_one_line_a_database_without_the_chatmem_api(scratch_db: str) -> None:
    started = time.monotonic()
    served = Serve("--workers", "1", env={"DATABASE_URL": scratch_db})
    assert served.process.wait(timeout=60) == 1
    stderr = served.stop()
    assert time.monotonic() - started < 30, "refused at once, not after a pool timeout"
    lines = [line for line in stderr.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: cannot serve: database ") and "has no chatmem API" in lines[0], lines
    assert "chatmem migrate" in lines[0]  # the hint says what to do
    assert "Traceback" not in stderr


def test_serve_refuses_in_one_line_a_server_it_cannot_reach(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/chatmem?host={tmp_path}&port=1"
    served = Serve("--workers", "1", env={"DATABASE_URL": url})
    assert served.process.wait(timeout=60) == 1
    lines = served.stop().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot serve: the database cannot be reached: "), lines
