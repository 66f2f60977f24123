"""Smoke test of ``make bench``: the benchmark runs end to end at tiny sizes.

It checks that the results file holds every figure the issue asks for and
that the benchmark did the work it claims (row counts, claim counts and plans
are checked inside the run; here, the transaction counts and plans).  It
asserts nothing about speed: a benchmark is never a timed test.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ["1", "2", "8"]
TRANSACTIONS = 20  # per client, as --quick runs pgbench
SIZES = ["600", "3000"]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0 and math.isfinite(value)


def test_quick_benchmark_writes_every_figure(admin_url: str, tmp_path: Path) -> None:
    database = f"chatmem_bench_smoke_{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--server-url",
            admin_url,
            "--database",
            database,
            "--out-dir",
            str(tmp_path),
            "--drop",
            "--no-progress",
            "--no-plot",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    [results_file] = tmp_path.glob("*.json")
    data = json.loads(results_file.read_text())

    # Where and on what it ran.
    assert data["postgresql"]["version"].startswith("PostgreSQL ")
    for setting in ("synchronous_commit", "fsync", "shared_buffers", "server_version"):
        assert setting in data["postgresql"]["settings"]
    assert data["machine"]["cpus"] and data["machine"]["cpu"]
    assert data["chatmem_settings"]["bcrypt_cost"] >= 4

    # 1-3: every design at every client count, every transaction done: chatmem, the older
    # design, the limit (a bare insert, no trigger) and the insert into chatmem's own table.
    pg = data["throughput"]["pgbench"]
    for design in ("chatmem", "baseline", "bare", "table_insert"):
        assert sorted(pg[design], key=int) == CLIENTS
        for clients, run in pg[design].items():
            assert _positive(run["tps"]) and _positive(run["latency_ms"])
            assert run["transactions"] == TRANSACTIONS * int(clients)
            assert run["protocol"] == "prepared"
    # Issue 14: the same two designs with a modelled network round trip of 0.5 and 1 ms,
    # one \sleep per round trip (chatmem makes 1, the older design 3).
    rtt = data["throughput"]["rtt"]
    assert sorted(rtt, key=int) == ["500", "1000"] and data["config"]["rtt_us"] == [500, 1000]
    for figures in rtt.values():
        for design, trips in (("chatmem", 1), ("baseline", 3)):
            assert sorted(figures[design], key=int) == CLIENTS
            for clients, run in figures[design].items():
                assert _positive(run["tps"]) and run["round_trips"] == trips
                assert run["transactions"] == TRANSACTIONS * int(clients)
    assert "With a modelled network between application and database" in proc.stdout
    for design in ("chatmem", "baseline"):
        py = data["throughput"]["python"][design]
        assert py["calls"] == TRANSACTIONS and _positive(py["calls_per_s"])
        assert py["latency_p95_ms"] >= py["latency_median_ms"] > 0
    # Issue 7's line: the gateway against the client, the same work each way.
    gw = data["throughput"]["gateway"]
    for way in ("client", "http"):
        assert gw[way]["calls"] == 30 and _positive(gw[way]["calls_per_s"])
    assert _positive(gw["http_over_client"])
    assert "HTTP gateway (1 client)" in proc.stdout

    # 4: both claims at every size; chatmem's served by its index, the older by a scan.
    claim = data["claim"]
    for design in ("chatmem", "baseline"):
        assert sorted(claim[design], key=int) == SIZES
        for figures in claim[design].values():
            assert figures["p95_ms"] >= figures["median_ms"] > 0 and figures["samples"] >= 5
    for size in SIZES:
        assert "conversation_sessions_guest_idx" in claim["plans"]["chatmem"][size]
        assert "Seq Scan" in claim["plans"]["baseline"][size]

    # 5: bcrypt alone, and each call with what it costs beyond bcrypt.
    acc = data["accounts"]
    for call in ("crypt", "register_user", "login"):
        assert _positive(acc[call]["median_ms"])
    assert math.isclose(
        acc["register_overhead_ms"],
        acc["register_user"]["median_ms"] - acc["crypt"]["median_ms"],
        abs_tol=0.01,
    )
    assert math.isfinite(acc["login_overhead_ms"])
    # bcrypt's time per call at the cost a new installation gets (issue 10 quotes it).
    assert acc["bcrypt_cost_default"] == acc["bcrypt_cost"] == data["chatmem_settings"]["bcrypt_cost"]
    assert "one bcrypt, crypt() alone," in proc.stdout
    # The overhead again against a bcrypt at cost 4: 5 pairs per repetition (2 with --quick).
    low = acc["low_cost"]
    assert low["bcrypt_cost"] == 4 and low["pairs"] == 10
    for key in ("register_overhead_ms", "login_overhead_ms"):
        assert low[key]["p95_ms"] >= low[key]["median_ms"] >= low[key]["min_ms"]
    assert "against a bcrypt at cost 4" in proc.stdout

    # Issue 10: new guest sessions with no spray, under a login spray, and with hashing unbounded.
    spray = data["spray"]
    assert spray["settings"]["max_concurrent_hashes"] >= 1 and spray["settings"]["hash_wait_s"] > 0
    assert spray["settings"]["bcrypt_cost"] == acc["bcrypt_cost"]
    assert spray["unbounded_slots"] > spray["settings"]["max_concurrent_hashes"]
    for mode in ("none", "bounded", "unbounded"):
        run = spray["modes"][mode]
        assert _positive(run["tps"]) and run["transactions"] > 0 and run["protocol"] == "prepared"
        if mode != "none":
            # Every answer the spray got is one api.login can give to an unknown email.
            assert set(run["spray"]["answers"]) <= {"28P01", "CM004", "CM001"}
    assert spray["modes"]["unbounded"]["max_concurrent_hashes"] == spray["unbounded_slots"]
    for key in ("spray_over_no_spray", "spray_unbounded_over_no_spray"):
        assert _positive(data["ratios"][key])
    assert "Login spray (issue 10)" in proc.stdout

    # Issue 14, item 1: the online upgrade of a generated legacy database, under the probes.
    up = data["upgrade"]
    assert up["size"] == {**up["size"], "sessions": 3000, "messages": 3000, "qa_pairs": 600}
    assert up["migrating_time_zone"] == "Europe/Berlin" and up["server_time_zone"]
    assert up["rows_lost"] == 0 and up["timestamps_misread"] == 0
    assert _positive(up["generated_s"]) and _positive(up["upgrade_s"])
    for name, table in (("writer", "conversation_messages"), ("reader", "conversation_sessions")):
        probe = up["probes"][name]
        assert probe["table"] == table and probe["calls"] > 0 and probe["errors"] == 0
        assert probe["longest_s"] > 0 and probe["lock_wait_s"] >= 0
    assert "Online upgrade (issue 14)" in proc.stdout
    # Issue 11: chatmem serve against the older Node.js backend over HTTP, where make bench
    # installed the baseline (make test never does): else "not measured" and MISS.
    http = data["http"]
    from bench.http import missing

    if missing() is None:
        assert http["connections"] == [1, 8, 32] and http["workers"] >= 1
        for design in ("chatmem", "older"):
            for run in http["figures"][design].values():
                assert _positive(run["rps"]) and _positive(run["p99_ms"]) and run["requests"] > 0
                assert _positive(run["server_cpu_ms_per_request"])
            assert sorted(http["figures"][design], key=int) == ["1", "8", "32"]
        assert set(data["ratios"]["http_chatmem_over_older"]) == {"1", "8", "32"}
        assert "HTTP: POST /api/chat/session" in proc.stdout
    else:
        assert http == {"skipped": missing()}
        assert "HTTP (issue 11): not measured" in proc.stdout
    # Issue 12: one list_conversations page per user, at the smallest and the largest size.
    conv = data["conversations"]
    assert conv["sizes"] == [100, 2000] and conv["reps"] == 30
    for size in ("100", "2000"):
        for kind in ("first", "middle"):
            page = conv["pages"][size][kind]
            assert page["p95_ms"] >= page["median_ms"] >= page["min_ms"] > 0
    assert all(_positive(v) for v in conv["largest_over_smallest"].values())
    assert "Conversations: one 50-row page of api.list_conversations" in proc.stdout

    # Ratios and the targets, each PASS or MISS on the terminal.
    ratios = data["ratios"]
    for key in ("chatmem_over_baseline", "chatmem_over_bare", "chatmem_over_table_insert",
                "bare_over_baseline", "table_insert_over_bare"):
        assert set(ratios[key]) == set(CLIENTS), key
    for rtt_us in ("500", "1000"):
        assert set(ratios["rtt_chatmem_over_baseline"][rtt_us]) == set(CLIENTS)
    # 3 for throughput (older design 1.0, limit 0.85, 0.5 ms round trip 2.0), 2 for the
    # claim, 2 for accounts, 1 for the spray, 6 for the upgrade (2 per probe, rows,
    # timestamps), 2 for http (req/s and p99), 1 for conversations.
    assert len(data["targets"]) == 17
    for t in data["targets"]:
        assert isinstance(t["pass"], bool)
        assert ("PASS  " if t["pass"] else "MISS  ") + t["target"] in proc.stdout
    assert (tmp_path / "latest.md").read_text().startswith("# Latest benchmark")

    # --drop left no database behind.
    with psycopg.connect(admin_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [database + "%"]
        ).fetchall()
    assert left == []
