"""Running the gateway: uvicorn with N worker processes, each with its own pool.

``chatmem serve`` calls :func:`run`.  Worker processes are spawned, so they
cannot be handed the app object: they build it with :func:`app_from_environment`
from the settings :func:`run` leaves in ``CHATMEM_GATEWAY_SETTINGS`` (a JSON
object; the environment of a process is readable by its user only).

Every accepted connection gets ``TCP_NODELAY``.  With more than one worker
uvicorn binds the listening socket itself as ``socket.socket(AF_INET)``,
whose protocol number is 0, and asyncio's transports turn Nagle's algorithm
off only for sockets whose protocol is ``IPPROTO_TCP``; a single worker's
socket comes from ``getaddrinfo`` (protocol 6) and gets it.  So with two
workers a keep-alive response went out in two writes (headers, then body),
the second held back by Nagle until the client's delayed ACK, 40 ms later:
every request took 44 ms.  Setting the option per connection, in the
protocol, holds whatever made the socket (tests/test_serve.py checks it).

And each response leaves in one write: uvicorn writes the status line and
headers, then the body, as two ``send`` calls (two TCP segments once Nagle is
off).  The connection's transport holds a response's head until its body is
written right after (or until the event loop's next turn, for a streamed
response), then writes both at once: one system call and one segment per
answer instead of two, for the server and for the client (bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from typing import Any, cast

from fastapi import FastAPI

SETTINGS_ENV = "CHATMEM_GATEWAY_SETTINGS"
HTTP_PROTOCOL = "chatmem.gateway.server:NoDelayHTTPProtocol"


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def pool_per_worker(pool_size: int, workers: int) -> int:
    """Each worker's share of ``pool_size`` connections, rounded up (at least 1)."""
    return max(1, -(-pool_size // max(1, workers)))


def auth_limit_per_worker(limit: int, workers: int) -> int:
    """Each worker's share of the auth rate limit (0: none), so that all together admit at most
    ``limit`` a minute per address: each worker counts only the requests it serves."""
    return 0 if limit == 0 else max(1, limit // max(1, workers))


def _no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the peer is already gone
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # no httptools (uvicorn without [standard]): the pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


class _OneWritePerResponse:
    """A transport that writes a response's head together with the body that follows it.

    Everything else is the real transport's; closing writes what is held first.
    """

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data[:9] == b"HTTP/1.1 " and data[9:12] != b"100" and data[-4:] == b"\r\n\r\n":
            self._head = bytes(data)
            self._loop.call_soon(self._flush)  # a body that does not follow at once
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class NoDelayHTTPProtocol(_Base):
    """uvicorn's HTTP/1.1 protocol (httptools when installed): TCP_NODELAY, one write per response."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(cast(asyncio.Transport, _OneWritePerResponse(transport)))


def app_from_environment() -> FastAPI:
    """The app of one worker, from the settings :func:`run` put in the environment."""
    from chatmem.cli.serve import _log_gateway_events
    from chatmem.gateway.app import create_app

    _log_gateway_events()
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set: start the gateway with chatmem serve")
    settings: dict[str, Any] = json.loads(raw)
    return create_app(settings["conninfo"], pool_size=settings["pool_size"],
                      prepare_threshold=settings["prepare_threshold"],
                      auth_rate_limit=settings["auth_rate_limit"],
                      broker_conninfo=settings.get("broker_conninfo"),
                      fast_path=settings.get("fast_path", True))


def run(conninfo: str, *, host: str, port: int, workers: int, pool_size: int,
        prepare_threshold: int | None, access_log: bool = True, broker_conninfo: str | None = None) -> None:
    """Serve until stopped: ``workers`` processes sharing one listening socket.

    ``pool_size`` connections in all, split between the workers, and the
    auth rate limit (CHATMEM_AUTH_RATE_LIMIT, else 30 a minute) too: each
    worker counts in its own memory, so each gets its share.  uvloop and
    httptools are used when installed (``chatmem[http]`` brings them).
    """
    import uvicorn

    raw_limit = os.environ.get("CHATMEM_AUTH_RATE_LIMIT", "").strip() or "30"
    try:
        limit = int(raw_limit)
    except ValueError:
        raise ValueError(f"CHATMEM_AUTH_RATE_LIMIT must be a whole number, not {raw_limit!r}") from None
    if limit < 0:
        raise ValueError(f"CHATMEM_AUTH_RATE_LIMIT must be 0 (no limit) or more, not {limit}")
    os.environ[SETTINGS_ENV] = json.dumps({
        "conninfo": conninfo, "pool_size": pool_per_worker(pool_size, workers),
        "prepare_threshold": prepare_threshold, "auth_rate_limit": auth_limit_per_worker(limit, workers),
        "broker_conninfo": broker_conninfo,
    })
    # proxy_headers=False: uvicorn would otherwise replace the client address
    # with X-Forwarded-For for any peer on 127.0.0.1, so a local caller could
    # dodge the per-address auth limit; the gateway decides which proxies to
    # believe (CHATMEM_TRUSTED_PROXIES).  The access log shows method, path
    # and status: never a body or a header.
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, host=host, port=port,
                workers=workers, http=HTTP_PROTOCOL, loop="auto", log_level="info",
                access_log=access_log, proxy_headers=False)
