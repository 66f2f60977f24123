"""``python -m bench``: one run of chatmem's benchmark (issue 6), on the embedded cluster.

It prints figures and ratios against the targets (PASS or MISS) and writes
them down; it never fails because a target was missed (``--strict`` does).
Default sizes finish within about 20 minutes on 2 cores.  ``--only`` runs
some sections (throughput, accounts, claim, spray, upgrade, http, conversations) and writes
``<date>.<sections>.json``, leaving the full run's files alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import accounts, claim, conversations, env, gateway, legacy_data, report, spray, throughput, upgrade
from bench.progress import Progress
from chatmem import embedded, target

DEFAULTS: dict[str, Any] = {
    "clients": "1,2,8",
    "duration": 20,
    "transactions": None,
    "python_duration": 10.0,
    "python_calls": None,
    "python_clients": 1,
    "rounds": 4,
    "claim_sizes": "10000,100000,1000000",
    "claim_reps": 200,
    "baseline_claim_reps": 30,
    "claim_seconds": 15.0,
    "account_reps": 20,
    "gateway_calls": 2000,
    "spray_clients": 1,
    "spray_connections": 32,
    "spray_duration": 20,
    "spray_warmup": 2.0,
    "rtt": "500,1000",
    "rtt_duration": 12,
    # The online upgrade (issue 14, item 1): a generated legacy database of this many
    # sessions and messages, and a fifth as many Q&A pairs.
    "upgrade_sessions": legacy_data.FULL.sessions,
    "http_connections": "1,8,32",
    "http_seconds": 5.0,
    "http_warmup": 2.0,
    "conversation_sizes": "100,10000",
    "conversation_reps": 300,
}
QUICK: dict[str, Any] = {
    "clients": "1,2,8",
    "duration": None,
    "transactions": 20,
    "python_duration": None,
    "python_calls": 20,
    "python_clients": 1,
    "rounds": 1,
    "claim_sizes": "600,3000",
    "claim_reps": 10,
    "baseline_claim_reps": 5,
    "claim_seconds": 2.0,
    "account_reps": 2,
    "gateway_calls": 30,
    "spray_clients": 1,
    "spray_connections": 8,
    "spray_duration": 1,
    "spray_warmup": 0.3,
    "rtt": "500,1000",
    "rtt_duration": None,
    "upgrade_sessions": 3000,
    "http_connections": "1,8,32",
    "http_seconds": 1.0,
    "http_warmup": 1.0,
    "conversation_sizes": "100,2000",
    "conversation_reps": 30,
}
SECTIONS = ("throughput", "accounts", "claim", "spray", "upgrade", "http", "conversations")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--server-url",
        help="libpq URL of the server (default: DATABASE_URL, else the embedded cluster)",
    )
    p.add_argument(
        "--database",
        default="chatmem_bench",
        help="database to (re)create for chatmem; the older design's is <database>_baseline",
    )
    p.add_argument(
        "--out-dir", type=Path, default=env.BENCH_DIR / "results", help="where results go"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes for a smoke test (a few seconds)"
    )
    p.add_argument("--clients", help="client counts, comma-separated (default 1,2,8)")
    p.add_argument("--duration", type=int, help="seconds per pgbench run (default 20)")
    p.add_argument(
        "--transactions",
        type=int,
        help="transactions per client per pgbench run, instead of --duration",
    )
    p.add_argument("--python-duration", type=float, help="seconds per Python-view run (default 10)")
    p.add_argument(
        "--python-calls",
        type=int,
        help="calls per client per Python-view run, instead of a duration",
    )
    p.add_argument(
        "--rounds",
        type=int,
        help="split each duration into this many rounds, the designs taking turns (default 4)",
    )
    p.add_argument("--python-clients", type=int, help="threads in the Python view (default 1)")
    p.add_argument(
        "--claim-sizes",
        help="table sizes for the claim, comma-separated (default 10000,100000,1000000)",
    )
    p.add_argument("--claim-reps", type=int, help="timed chatmem claims per size (default 200)")
    p.add_argument(
        "--baseline-claim-reps", type=int, help="timed older-design claims per size (default 30)"
    )
    p.add_argument("--claim-seconds", type=float, help="time cap per design and size (default 15)")
    p.add_argument("--account-reps", type=int, help="timed register/login pairs (default 20)")
    p.add_argument(
        "--gateway-calls", type=int, help="POST /api/chat/session calls, and as many client calls (default 2000)"
    )
    p.add_argument(
        "--spray-clients",
        type=int,
        help="pgbench clients measured under the login spray (default 1)",
    )
    p.add_argument(
        "--spray-connections",
        type=int,
        help="connections spraying api.login with random emails (default 32)",
    )
    p.add_argument(
        "--spray-duration",
        type=int,
        help="seconds of pgbench per spray mode, split into the rounds (default 20)",
    )
    p.add_argument(
        "--spray-warmup",
        type=float,
        help="seconds the spray runs before each timed round (default 2)",
    )
    p.add_argument(
        "--rtt",
        help="modelled network round-trip times in microseconds, comma-separated: chatmem and "
        "the older design again with a pgbench \\sleep of that long before every round trip "
        "(default 500,1000; '' for none)",
    )
    p.add_argument(
        "--rtt-duration",
        type=int,
        help="seconds of pgbench per design, client count and round-trip time, split into the "
        "rounds (default 12; with --transactions, that count instead)",
    )
    p.add_argument(
        "--upgrade-sessions",
        type=int,
        help="sessions (and messages; a fifth as many Q&A pairs) in the generated legacy database "
        "the upgrade section migrates (default 1000000)",
    )
    p.add_argument(
        "--upgrade-time-zone",
        default="Europe/Berlin",
        help="the migrating session's TimeZone (PGTZ) in the upgrade section; the server's own "
        "stays as it is (default Europe/Berlin)",
    )
    p.add_argument(
        "--http-connections",
        help="wrk connections for the http section, comma-separated (default 1,8,32)",
    )
    p.add_argument(
        "--http-seconds",
        type=float,
        help="seconds of wrk per server, connection count and round in the http section (default 5)",
    )
    p.add_argument(
        "--http-warmup", type=float, help="seconds of wrk warming each server up first (default 2)"
    )
    p.add_argument(
        "--workers",
        type=int,
        help="chatmem serve --workers in the http section (default: the machine's cores)",
    )
    p.add_argument(
        "--conversation-sizes",
        help="sessions of each user whose list_conversations page is timed, comma-separated "
        "(default 100,10000)",
    )
    p.add_argument(
        "--conversation-reps", type=int, help="timed pages per user and kind of page (default 300)"
    )
    p.add_argument(
        "--only",
        help=f"run only these sections, comma-separated ({', '.join(SECTIONS)}); "
        "results go to <date>.<sections>.json and latest.md is left alone",
    )
    p.add_argument(
        "--pgbouncer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the 8-client line through PgBouncer (default: on unless --quick)",
    )
    p.add_argument("--drop", action="store_true", help="drop the benchmark databases at the end")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    explicit = {key: getattr(args, key) for key in base}
    for key, value in base.items():
        if explicit[key] is None:
            setattr(args, key, value)
    # A count given on the command line replaces the default duration, and the other way round.
    for count, duration in (("transactions", "duration"), ("python_calls", "python_duration")):
        if explicit[count] is not None and explicit[duration] is None:
            setattr(args, duration, None)
        if explicit[duration] is not None and explicit[count] is None:
            setattr(args, count, None)
    # The modelled-RTT runs too: a transaction count given replaces their duration, and
    # with no count they always have one.
    if explicit["transactions"] is not None and explicit["rtt_duration"] is None:
        args.rtt_duration = None
    if args.rtt_duration is None and args.transactions is None:
        args.rtt_duration = DEFAULTS["rtt_duration"]
    if args.pgbouncer is None:
        args.pgbouncer = not args.quick
    if args.only:
        only = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(only) - set(SECTIONS))
        if unknown or not only:
            p.error(f"--only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        args.sections = [s for s in SECTIONS if s in only]
    else:
        args.sections = list(SECTIONS)
    return args


def server_url(explicit: str | None) -> str:
    """Where to create the benchmark's databases: the given server, else the embedded cluster.

    On the embedded cluster the maintenance database ``postgres`` is used, which
    always exists (chatmem's default database may not).
    """
    url = explicit or target.external_url()
    return url or embedded.up().url("postgres")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def rtt_seconds(args: argparse.Namespace) -> int | None:
    """pgbench -T per round of the modelled-RTT runs (None: --transactions instead)."""
    if not args.rtt_duration:
        return None
    return max(1, round(int(args.rtt_duration) / int(args.rounds)))


def spray_seconds(args: argparse.Namespace) -> int:
    """pgbench -T takes whole seconds: each spray mode's duration is split into the rounds."""
    return max(1, round(int(args.spray_duration) / int(args.rounds)))


def upgrade_size(args: argparse.Namespace) -> legacy_data.LegacySize:
    """The legacy database the upgrade section generates (issue 14's figures by default)."""
    n = int(args.upgrade_sessions)
    return legacy_data.LegacySize(sessions=n, messages=n, qa_pairs=max(1, n // 5))


def estimate_seconds(args: argparse.Namespace, clients: list[int], sizes: list[int]) -> float:
    total = 6.0
    if "throughput" in args.sections:
        per_round = (max(1, round(args.duration / args.rounds)) if args.duration else 0.3) + 1
        total += len(throughput.DESIGNS) * len(clients) * args.rounds * per_round
        total += 2 * len(_ints(args.rtt)) * len(clients) * args.rounds * ((rtt_seconds(args) or 0.3) + 1)
        total += 2 * args.rounds * ((args.python_duration or 0.3 * args.rounds) / args.rounds + 0.5)
        if args.pgbouncer:
            total += 6 * args.rounds * per_round + 1
        total += 2 + 2 * args.gateway_calls / 500
    if "accounts" in args.sections:
        total += (args.account_reps + 1) * 0.5
    if "claim" in args.sections:
        previous = 0
        for size in sorted(sizes):
            total += claim.populate_seconds(size - previous) + args.claim_reps * 0.002 + 2
            total += min(args.baseline_claim_reps * size * 4e-7, args.claim_seconds) + 1
            previous = size
    if "http" in args.sections:
        runs_ = 2 * len(_ints(args.http_connections)) * args.rounds
        total += 8 + 2 * (args.http_warmup + 0.5) + runs_ * (max(1, round(args.http_seconds)) + 1)
    if "conversations" in args.sections:
        total += sum(_ints(args.conversation_sizes)) * 0.0002 + 2 + args.conversation_reps * 0.004
    if "spray" in args.sections:
        # Stopping the unbounded spray waits for every bcrypt in flight (about 67 ms each).
        unbounded_stop = args.spray_connections * 0.07 / (os.cpu_count() or 1)
        total += args.rounds * (3 * (spray_seconds(args) + 1) + 2 * args.spray_warmup + unbounded_stop)
    if "upgrade" in args.sections:
        total += upgrade_seconds(args)
    return float(total)


def upgrade_seconds(args: argparse.Namespace) -> float:
    """About 70 s at a million sessions on 2 cores: generating, migrating, checking, dropping."""
    return 3 + 70 * int(args.upgrade_sessions) / 1_000_000


def pg_stat_top(url: str, limit: int = 12) -> list[dict[str, Any]]:
    """The statements that took the most time in this database during the run."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160), calls,
                      round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 4), rows
                 FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY total_exec_time DESC LIMIT %s""",
            [limit],
        ).fetchall()
    return [
        {"query": q, "calls": c, "total_ms": float(t), "mean_ms": float(m), "rows": r}
        for q, c, t, m, r in rows
    ]


def reset_pg_stat(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
            " WHERE datname = current_database()), 0)"
        )


RTT_DESIGNS = ("chatmem", "baseline")


def run_rtt(
    rtts: list[int],
    clients: list[int],
    rounds: int,
    round_seconds: int | None,
    run_one: Any,
) -> dict[str, Any]:
    """chatmem and the older design with ``\\sleep <rtt> us`` before every round trip:
    {rtt_us: {design: {clients: figures}}}, the designs taking turns in rounds as above."""
    out: dict[str, Any] = {}
    folder = Path(tempfile.mkdtemp(prefix="chatmem-bench-rtt-"))
    try:
        for rtt in rtts:
            scripts = {d: throughput.with_rtt(throughput.SCRIPTS[d], rtt, folder) for d in RTT_DESIGNS}
            by_design: dict[str, dict[str, Any]] = {d: {} for d in RTT_DESIGNS}
            for n in clients:
                figs_by_design = throughput.interleaved(
                    list(RTT_DESIGNS),
                    rounds,
                    lambda d, n=n, scripts=scripts, rtt=rtt: run_one(
                        d,
                        n=n,
                        script=scripts[d],
                        round_seconds=round_seconds,
                        label=f", {rtt / 1000:g} ms round trips",
                    ),
                )
                for design, figs in figs_by_design.items():
                    fig = throughput.combine_pgbench(figs)
                    fig["round_trips"] = throughput.round_trips(throughput.SCRIPTS[design])
                    by_design[design][str(n)] = fig
            out[str(rtt)] = by_design
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def run_http(args: argparse.Namespace, chatmem_url: str, baseline_url: str, progress: Progress) -> dict[str, Any]:
    """chatmem serve against the older Node.js backend over HTTP (bench/http.py), or why not."""
    from bench import http
    from chatmem.gateway.server import default_workers

    why_not = http.missing()
    if why_not:
        print(f"note: http section not measured: {why_not}", file=sys.stderr)
        return {"skipped": why_not}
    with tempfile.TemporaryDirectory(prefix="chatmem-bench-http-") as logs:
        return http.run(
            chatmem_url,
            baseline_url,
            connections=_ints(args.http_connections),
            rounds=args.rounds,
            seconds=args.http_seconds,
            warmup=args.http_warmup,
            workers=args.workers or default_workers(),
            log_dir=Path(logs),
            on_step=progress.step,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clients = _ints(args.clients)
    sizes = sorted(_ints(args.claim_sizes))
    server = server_url(args.server_url)
    pgbench = env.pgbench_path()
    started = time.time()
    date = dt.date.today().isoformat()
    results: dict[str, Any] = {
        "date": date,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": env.machine_info(),
        "config": {
            "quick": args.quick,
            "clients": clients,
            "duration_s": args.duration,
            "transactions": args.transactions,
            "python_duration_s": args.python_duration,
            "python_calls": args.python_calls,
            "python_clients": args.python_clients,
            "rounds": args.rounds,
            "claim_sizes": sizes,
            "claim_reps": args.claim_reps,
            "baseline_claim_reps": args.baseline_claim_reps,
            "claim_seconds_cap": args.claim_seconds,
            "account_reps": args.account_reps,
            "spray_clients": args.spray_clients,
            "spray_connections": args.spray_connections,
            "spray_duration_s": args.spray_duration,
            "spray_warmup_s": args.spray_warmup,
            "rtt_us": _ints(args.rtt),
            "rtt_duration_s": args.rtt_duration,
            "upgrade_sessions": args.upgrade_sessions,
            "upgrade_time_zone": args.upgrade_time_zone,
            "conversation_sizes": _ints(args.conversation_sizes),
            "conversation_reps": args.conversation_reps,
            "sections": args.sections,
            "http_connections": _ints(args.http_connections),
            "http_seconds": args.http_seconds,
            "pgbench": pgbench,
            "protocol": "prepared",
            "databases": [args.database, f"{args.database}_baseline"],
        },
    }
    progress = Progress(estimate_seconds(args, clients, sizes), enabled=not args.no_progress)
    chatmem_url = baseline_url = ""
    try:
        with progress.step("setting up both databases", 6):
            chatmem_url = env.recreate_database(server, args.database)
            baseline_url = env.recreate_database(server, f"{args.database}_baseline")
            results["schema_version"] = env.setup_chatmem(chatmem_url)
            env.setup_baseline(baseline_url)
            with psycopg.connect(chatmem_url, autocommit=True) as conn:
                throughput.setup_bare_table(conn)
            for url in (chatmem_url, baseline_url):
                reset_pg_stat(url)
            with psycopg.connect(chatmem_url, autocommit=True) as conn:
                results["postgresql"] = env.server_info(conn)
                results["chatmem_settings"] = env.chatmem_settings(conn)
        urls = {
            "chatmem": chatmem_url,
            "baseline": baseline_url,
            "bare": chatmem_url,
            "table_insert": chatmem_url,
        }

        runs = itertools.count(1)
        # pgbench -T takes whole seconds: the duration is split into rounds.
        seconds = max(1, round(args.duration / args.rounds)) if args.duration else None

        def pgbench_run(
            design: str,
            n: int,
            url: str | None = None,
            protocol: str = "prepared",
            label: str = "",
            script: Path | None = None,
            round_seconds: int | None = seconds,
        ) -> dict[str, Any]:
            """One round: empty table, checkpoint, pgbench, then count the rows it made."""
            with (
                progress.step(
                    f"pgbench: {design}, {n} client(s){label}", (round_seconds or 0.3) + 1
                ),
                psycopg.connect(urls[design], autocommit=True) as conn,
            ):
                throughput.truncate(conn)
                env.checkpoint(conn)
                prefix = throughput.session_prefix()
                fig = throughput.run_pgbench(
                    pgbench,
                    url or urls[design],
                    script or throughput.SCRIPTS[design],
                    clients=n,
                    run=next(runs) % 100,
                    prefix=prefix,
                    seconds=round_seconds,
                    transactions=args.transactions,
                    protocol=protocol,
                    jobs=min(n, os.cpu_count() or 1),
                )
                table = throughput.TABLES.get(design, "conversation_sessions")
                throughput.verify_rows(conn, prefix, fig["transactions"], table)
                return fig

        if "throughput" in args.sections:
            # For each client count, the designs take turns in short rounds.
            pg: dict[str, dict[str, Any]] = {d: {} for d in throughput.DESIGNS}
            for n in clients:
                rounds = throughput.interleaved(
                    list(throughput.DESIGNS), args.rounds, functools.partial(pgbench_run, n=n)
                )
                for design, figs in rounds.items():
                    pg[design][str(n)] = throughput.combine_pgbench(figs)
            results["throughput"] = {"pgbench": pg}

            # The same two designs again with a modelled network between the
            # application and the database: a \sleep before every round trip.
            rtts = _ints(args.rtt)
            if rtts:
                results["throughput"]["rtt"] = run_rtt(
                    rtts, clients, args.rounds, rtt_seconds(args), pgbench_run
                )

            py_seconds = args.python_duration / args.rounds if args.python_duration else None

            def python_run(design: str) -> dict[str, Any]:
                with (
                    progress.step(f"python: {design}", (py_seconds or 0.3) + 0.5),
                    psycopg.connect(urls[design], autocommit=True) as conn,
                ):
                    throughput.truncate(conn)
                    env.checkpoint(conn)
                    prefix = throughput.session_prefix()
                    fig = throughput.run_python(
                        design,
                        urls[design],
                        clients=args.python_clients,
                        run=next(runs) % 100,
                        prefix=prefix,
                        seconds=py_seconds,
                        calls=args.python_calls,
                    )
                    throughput.verify_rows(conn, prefix, fig["calls"])
                    return fig

            py_rounds = throughput.interleaved(["chatmem", "baseline"], args.rounds, python_run)
            results["throughput"]["python"] = {
                design: throughput.combine_python(figs) for design, figs in py_rounds.items()
            }

            with progress.step("http: the gateway against the client", 2 + 2 * args.gateway_calls / 500):
                results["throughput"]["gateway"] = gateway.run(chatmem_url, calls=args.gateway_calls)

            if args.pgbouncer:
                from bench import pgbouncer

                results["throughput"]["pgbouncer"] = pgbouncer.run(
                    server, urls, clients=max(clients), rounds=args.rounds, run_one=pgbench_run
                )

        if "http" in args.sections:
            results["http"] = run_http(args, chatmem_url, baseline_url, progress)

        if "accounts" in args.sections:
            with progress.step(
                "accounts: register_user and login against crypt()", (args.account_reps + 1) * 0.5
            ):
                results["accounts"] = accounts.run(chatmem_url, reps=args.account_reps)

        if "spray" in args.sections:
            results["spray"] = spray.run(
                chatmem_url,
                pgbench=pgbench,
                clients=args.spray_clients,
                connections=args.spray_connections,
                seconds=spray_seconds(args),
                warmup=args.spray_warmup,
                rounds=args.rounds,
                run_numbers=runs,
                on_step=progress.step,
            )

        if "claim" in args.sections:
            results["claim"] = claim.run(
                chatmem_url,
                baseline_url,
                sizes,
                reps=args.claim_reps,
                baseline_reps=args.baseline_claim_reps,
                max_seconds=args.claim_seconds,
                on_step=progress.step,
            )

        if "upgrade" in args.sections:
            size = upgrade_size(args)
            with progress.step(
                f"upgrade: a legacy database of {size.sessions:,} sessions, migrated under probes",
                upgrade_seconds(args),
            ):
                results["upgrade"] = upgrade.run(
                    server,
                    size,
                    migrating_time_zone=args.upgrade_time_zone,
                    progress=lambda line: (
                        progress.note(f"  upgrade: {line}") if line.startswith("step:") else None
                    ),
                    database=f"{args.database}_upgrade",
                )

        if "conversations" in args.sections:
            sizes_ = _ints(args.conversation_sizes)
            with progress.step(
                f"conversations: a page of list_conversations at {', '.join(f'{n:,}' for n in sizes_)} sessions",
                sum(sizes_) * 0.0002 + 2 + args.conversation_reps * 0.004,
            ):
                results["conversations"] = conversations.run(
                    chatmem_url, sizes=sizes_, reps=args.conversation_reps
                )

        results["pg_stat_statements"] = {
            "chatmem": pg_stat_top(chatmem_url),
            "baseline": pg_stat_top(baseline_url),
        }
    finally:
        progress.close()
        if args.drop:
            for name in (args.database, f"{args.database}_baseline"):
                env.drop_database(server, name)

    results["machine"]["loadavg_at_end"] = env.loadavg()
    results["elapsed_s"] = round(time.time() - started, 1)
    results["ratios"] = report.ratios(results)
    results["targets"] = report.targets(results)

    partial = args.sections != list(SECTIONS)
    stem = f"{date}.{'+'.join(args.sections)}" if partial else date
    out_json = args.out_dir / f"{stem}.json"
    png_name = None
    if not args.no_plot and not partial:
        png = args.out_dir / f"{date}.png"
        problem = report.plot(results, png)
        results["plot"] = str(png.name) if problem is None else None
        if problem:
            print(f"note: no plot: {problem}", file=sys.stderr)
        else:
            png_name = png.name
    report.write_json(results, out_json)
    if not partial:
        (args.out_dir / "latest.md").write_text(report.markdown(results, png_name))

    print(report.table(results))
    print(
        f"\nwritten: {out_json}"
        + (f", {args.out_dir / png_name}" if png_name else "")
        + ("" if partial else f", {args.out_dir / 'latest.md'}")
        + f"  ({results['elapsed_s']:.0f} s)"
    )
    missed = [t for t in results["targets"] if not t["pass"]]
    return 1 if (args.strict and missed) else 0
