"""What the gateway's layers cost per request: ``python -m bench.layers --database-url URL``.

An experiment beside ``make bench``'s http section (bench/README.md, 7), not
part of it.  Three servers answer ``POST /api/chat/session`` for a new guest
(``scripts/new_guest_session.lua``), each one uvicorn worker with the
gateway's protocol (uvloop, httptools, TCP_NODELAY, one write per answer) and
a pool of 10 connections, on the same database:

- **fast**: the gateway as ``chatmem serve`` runs it, the chat routes on
  chatmem.gateway.fast_path;
- **fastapi**: the same gateway with ``fast_path=False``: FastAPI's routes;
- **bare**: ``bench/bare_asgi.py``, the same call and envelope with no
  checks at all (the floor);
- **fifo**: the fast gateway on psycopg_pool's own AsyncConnectionPool
  (idle connections taken in turn) instead of chatmem's HotFirstPool (the
  connection returned last first): what the pool's order costs;
- **older** (only with ``--older-database-url``, a database with the older
  schema): the Node.js backend of the http section, for the ratio.

``--designs`` picks some of them (``--connections 1 --designs fast,bare``:
the latency of one keep-alive connection, where each request waits for the
one before); the table prints mean latency and p99 beside the CPU.

They take turns in rounds (the order rotated each round), each round on
emptied tables after a CHECKPOINT; the figure is the CPU the server's own
process spent per request (user + system, from /proc: robust to the other
load on a shared machine), with req/s and p99 beside it.  The database must
be migrated (``make bench`` or ``chatmem migrate``); its sessions are deleted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg

from bench import env, http, throughput

DESIGNS = ("fast", "fastapi", "bare", "fifo", "older")
REPO = env.BENCH_DIR.parent


def _server(design: str, url: str, log: Path) -> AbstractContextManager[http.Server]:
    if design == "older":
        return http.older_server(url, log)
    factory = {"bare": "bench.bare_asgi:make", "fifo": "bench.layers:fifo_app"}.get(
        design, "chatmem.gateway.server:app_from_environment")
    settings = {"conninfo": url, "pool_size": http.POOL_SIZE, "prepare_threshold": 5, "auth_rate_limit": 0,
                "fast_path": design in ("fast", "fifo")}

    def command(port: int) -> list[str]:
        return [sys.executable, "-c",
                f"import uvicorn; uvicorn.run({factory!r}, factory=True, host='127.0.0.1', port={port}, "
                "http='chatmem.gateway.server:NoDelayHTTPProtocol', access_log=False, proxy_headers=False, "
                "log_level='warning')"]

    return http._serving(command, "/healthz", {"CHATMEM_GATEWAY_SETTINGS": json.dumps(settings)}, log, cwd=REPO)


def fifo_app() -> Any:
    """The gateway as ``chatmem serve`` runs it, but on psycopg_pool's own pool (the fifo design)."""
    from psycopg_pool import AsyncConnectionPool

    from chatmem.gateway import app, server

    app.HotFirstPool = AsyncConnectionPool  # type: ignore[misc]
    return server.app_from_environment()


def run(url: str, *, connections: list[int], rounds: int, seconds: float, warmup: float,
        designs: tuple[str, ...] = DESIGNS[:3], older_url: str | None = None,
        warmup_connections: int | None = None) -> dict[str, Any]:
    urls = {d: older_url if d == "older" else url for d in designs}
    with tempfile.TemporaryDirectory(prefix="chatmem-bench-layers-") as logs:
        servers: dict[str, http.Server] = {}
        contexts = [_server(d, urls[d] or url, Path(logs) / f"{d}.log") for d in designs]
        try:
            for design, context in zip(designs, contexts, strict=True):
                servers[design] = context.__enter__()
            for design in designs:
                http.run_wrk(servers[design].base, warmup_connections or max(connections), warmup)

            def one_round(design: str, n: int) -> dict[str, Any]:
                with psycopg.connect(urls[design] or url, autocommit=True) as conn:
                    throughput.truncate(conn)
                    env.checkpoint(conn)
                cpu_before = servers[design].cpu_seconds()
                fig = http.run_wrk(servers[design].base, n, seconds)
                cpu = servers[design].cpu_seconds() - cpu_before
                fig["server_cpu_ms_per_request"] = round(1000 * cpu / max(1, fig["requests"]), 3)
                return fig

            figures: dict[str, dict[str, Any]] = {d: {} for d in designs}
            for n in connections:
                by_design = throughput.interleaved(list(designs), rounds, lambda d, n=n: one_round(d, n))
                for design, runs in by_design.items():
                    figures[design][str(n)] = http.combine(runs)
                    figures[design][str(n)]["mean_ms"] = round(statistics.median(r["mean_ms"] for r in runs), 3)
        finally:
            for context in reversed(contexts[:len(servers)]):
                context.__exit__(None, None, None)
    return {"rounds": rounds, "round_seconds": seconds, "connections": connections, "designs": list(designs),
            "warmup_connections": warmup_connections or max(connections), "figures": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="a migrated chatmem database (its sessions are deleted)")
    parser.add_argument("--connections", default="8,32", help="wrk connections, comma-separated (default 8,32)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of wrk per server and round")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--warmup-connections", type=int,
                        help="wrk connections of the warm-up (default: the most of --connections; the http "
                             "section warms up at 32, which fills the pools, before it measures 1)")
    parser.add_argument("--designs", default="fast,fastapi,bare",
                        help=f"servers to measure, comma-separated, of {','.join(DESIGNS)} (default fast,fastapi,bare)")
    parser.add_argument("--older-database-url", help="a database with the older schema, for the older design")
    args = parser.parse_args(argv)
    designs = tuple(d.strip() for d in args.designs.split(",") if d.strip())
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or not designs:
        parser.error(f"--designs: choose among {', '.join(DESIGNS)} (got {args.designs!r})")
    if "older" in designs and not args.older_database_url:
        parser.error("--designs older needs --older-database-url (a database with bench/baselines/node_schema.sql)")
    why_not = http.missing()
    if why_not and "wrk" in why_not:
        print(f"error: {why_not}", file=sys.stderr)
        return 1
    result = run(args.database_url, connections=[int(c) for c in args.connections.split(",")],
                 rounds=args.rounds, seconds=args.seconds, warmup=args.warmup, designs=designs,
                 older_url=args.older_database_url, warmup_connections=args.warmup_connections)
    print(json.dumps(result, indent=2))
    print(f"{'connections':>11} {'server':>8} {'CPU ms/req':>10} {'req/s':>8} {'mean ms':>8} {'p99 ms':>7}")
    for n in result["connections"]:
        for design in designs:
            fig = result["figures"][design][str(n)]
            print(f"{n:>11} {design:>8} {fig['server_cpu_ms_per_request']:>10.3f} {fig['rps']:>8.0f} "
                  f"{fig['mean_ms']:>8.3f} {fig['p99_ms']:>7.2f}")
        for other in ("fastapi", "bare", "fifo", "older"):
            if "fast" in designs and other in designs:
                fast, ref = (result["figures"][d][str(n)] for d in ("fast", other))
                cpu = fast["server_cpu_ms_per_request"] / ref["server_cpu_ms_per_request"]
                print(f"{'':>11} fast/{other}: CPU per request {cpu:.2f}, req/s {fast['rps'] / ref['rps']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
