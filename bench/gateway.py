"""Issue 7's line: what the HTTP gateway adds to ``POST /api/chat/session``.

The same work (a new guest session through ``api.create_session``) done two
ways, one call at a time: through ``chatmem.Client.create_session``, and as
``POST /api/chat/session`` to ``chatmem serve`` running in its own process
(so it does not share this process's GIL), over a keep-alive connection.
The ratio says what the gateway costs on top of the client.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from chatmem import Client


class GatewayError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _timed(calls: int, call: Any) -> dict[str, Any]:
    latencies = []
    began = time.perf_counter()
    for i in range(calls):
        t0 = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - began
    return {
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "latency_median_ms": round(_median(latencies) * 1000, 3),
    }


def run(url: str, *, calls: int) -> dict[str, Any]:
    """Time ``calls`` new guest sessions each way; 3 sessions per guest id, as elsewhere."""
    guests = [str(uuid.uuid4()) for _ in range(calls // 3 + 2)]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chatmem", "serve", "--port", str(port), "--database-url", url,
         "--pool-size", "2", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=base, timeout=30) as http:
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise GatewayError(f"chatmem serve did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.05)

            def over_http(i: int) -> None:
                response = http.post("/api/chat/session", json={"userId": guests[i // 3]})
                if response.status_code != 201:
                    raise GatewayError(f"POST /api/chat/session answered {response.status_code}: {response.text}")

            for i in range(min(20, calls)):  # warm both paths up alike
                over_http(i)
            with Client(url, min_size=1, max_size=1) as client:
                for i in range(min(20, calls)):
                    client.create_session(user_id=guests[i // 3])
                direct = _timed(calls, lambda i: client.create_session(user_id=guests[-1 - i // 3]))
            http_fig = _timed(calls, over_http)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "client": {**direct, "driver": "chatmem.Client.create_session"},
        "http": {**http_fig, "driver": "POST /api/chat/session (httpx keep-alive, chatmem serve)"},
        "http_over_client": round(http_fig["calls_per_s"] / direct["calls_per_s"], 3),
        "added_ms": round(http_fig["latency_median_ms"] - direct["latency_median_ms"], 3),
    }
