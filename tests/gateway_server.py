"""Run the HTTP gateway for real (uvicorn on a free port) inside the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from chatmem.gateway import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_gateway(
    conninfo: str, *, log_level: str = "warning", app: FastAPI | None = None, **app_options: object
) -> Iterator[str]:
    """Yield the base URL of a gateway serving ``conninfo``; stop it afterwards.

    uvicorn's own logging setup is skipped (``log_config=None``), so its
    records, the access log included, reach pytest's ``caplog``.

    The auth rate limit is off unless a test passes ``auth_rate_limit``: the
    gateway tests make far more than 30 auth calls a minute, all from
    127.0.0.1 (tests/test_gateway_limits.py turns it on).

    ``proxy_headers=False``: uvicorn would otherwise take the client address
    from X-Forwarded-For itself for peers in FORWARDED_ALLOW_IPS (127.0.0.1
    by default), before the gateway sees the request; the gateway's own
    trusted_proxies setting must be the only one that decides.
    """
    app_options.setdefault("auth_rate_limit", 0)
    port = free_port()
    config = uvicorn.Config(app or create_app(conninfo, **app_options),  # type: ignore[arg-type]
                            host="127.0.0.1", port=port, log_level=log_level, lifespan="on",
                            log_config=None, access_log=True, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
