"""New guest sessions while a login spray runs (issue 10): what bounding bcrypt buys.

Every login and registration spends one bcrypt (about 67 ms of a core at the
default cost 10).  chatmem lets at most ``chatmem_settings.max_concurrent_hashes``
of them run at once; a call that gets no hashing slot within ``hash_wait`` is
refused with CM004 before hashing.  This section measures what that leaves to
everyone else: new guest sessions per second through
``api.create_or_get_session`` (pgbench, ``scripts/chatmem_new_guest_session.pgbench``,
``-M prepared``, as the throughput section drives it) in three modes, taking
turns in rounds:

- ``none``: no spray, the reference;
- ``bounded``: while ``connections`` connections (default 32) each call
  ``api.login`` in a loop, every call with a new random email that has no
  account and a wrong password, at chatmem's settings as migrated;
- ``unbounded``: the same spray with ``max_concurrent_hashes`` raised to
  1000 for the round (restored afterwards, also on error), to show what the
  bound buys.

The spray is Python threads, one psycopg connection each: they spend their
time waiting for the server, so they cost the machine little CPU, and each
answer is counted by its SQLSTATE: 28P01 (the password was checked: one
bcrypt), CM004 (refused before hashing) and CM001 (throttled; cannot happen
with a new email per call).  Any other answer stops the run.  Only answers
that arrive while pgbench runs count toward the spray's rates.

The server, pgbench and the spray share the same machine and its cores: the
figures say what one machine does with all three on it, not what a server
with cores of its own would do.  The CPU use of the whole machine during each
timed window (from /proc/stat) is kept, to show where the cores went.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench import env, throughput
from bench.throughput import BenchError

MODES = ("none", "bounded", "unbounded")
UNBOUNDED_SLOTS = 1000
WRONG_PASSWORD = "not the password 1"
EXPECTED = {"28P01": "checked", "CM004": "refused", "CM001": "throttled"}


def read_settings(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(
        "SELECT bcrypt_cost, max_concurrent_hashes, extract(epoch FROM hash_wait)::float8"
        "  FROM public.chatmem_settings"
    ).fetchone()
    if row is None:
        raise BenchError("public.chatmem_settings has no row")
    return {"bcrypt_cost": row[0], "max_concurrent_hashes": row[1], "hash_wait_s": row[2]}


def set_slots(conn: psycopg.Connection[Any], slots: int) -> None:
    conn.execute(
        "UPDATE public.chatmem_settings SET max_concurrent_hashes = %s, updated_at = now()",
        [slots],
    )


@contextlib.contextmanager
def slots_set_to(url: str, slots: int) -> Iterator[None]:
    """``max_concurrent_hashes = slots`` until the block ends, however it ends."""
    with psycopg.connect(url, autocommit=True) as conn:
        before = read_settings(conn)["max_concurrent_hashes"]
        set_slots(conn, slots)
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            set_slots(conn, before)


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, or None where /proc/stat is missing."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1), 2)


class Spray:
    """``connections`` threads, each on its own connection, calling api.login until stopped.

    Each answer is kept as (time it arrived, SQLSTATE, seconds it took).
    """

    def __init__(self, url: str, connections: int) -> None:
        self.url = url
        self.connections = connections
        self.answers: list[list[tuple[float, str, float]]] = [[] for _ in range(connections)]
        self.errors: list[BaseException] = []
        self._conns: list[psycopg.Connection[Any] | None] = [None] * connections
        self._stop = threading.Event()
        self._ready = threading.Barrier(connections + 1)
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True)
            for i in range(connections)
        ]

    def _worker(self, i: int) -> None:
        own = self.answers[i]
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except BaseException as exc:
            self.errors.append(exc)
            self._ready.abort()
            return
        self._conns[i] = conn
        try:
            self._ready.wait()
            while not self._stop.is_set():
                email = f"spray-{uuid.uuid4().hex}@example.com"
                t0 = time.perf_counter()
                try:
                    conn.execute(
                        "SELECT user_id FROM api.login(%s, %s, NULL)", [email, WRONG_PASSWORD]
                    ).fetchone()
                    state = "00000"
                except psycopg.Error as exc:
                    if self._stop.is_set():
                        break  # cancelled by stop()
                    if exc.sqlstate is None:  # the connection itself failed
                        raise
                    state = exc.sqlstate
                t1 = time.perf_counter()
                own.append((t1, state, t1 - t0))
        except BaseException as exc:  # reported by stop(), after the other threads end
            if not self._stop.is_set():
                self.errors.append(exc)
        finally:
            conn.close()

    def __enter__(self) -> Spray:
        for t in self._threads:
            t.start()
        try:
            self._ready.wait()
        except threading.BrokenBarrierError:
            self.stop()
            raise BenchError(f"spray: a connection failed: {self.errors[:1]!r}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        # A waiting or hashing call would finish within about hash_wait; cancel it instead.
        for conn in self._conns:
            if conn is not None and not conn.closed:
                with contextlib.suppress(Exception):
                    conn.cancel()
        for t in self._threads:
            t.join(timeout=30)
        if self.errors:
            raise BenchError(f"spray failed: {self.errors[0]!r}") from self.errors[0]

    def window(self, start: float, end: float) -> dict[str, Any]:
        """What the spray got answered between ``start`` and ``end`` (perf_counter times)."""
        got = [a for own in self.answers for a in own if start <= a[0] <= end]
        seconds = end - start
        counts: dict[str, int] = {}
        for _, state, _ in got:
            counts[state] = counts.get(state, 0) + 1
        unexpected = {s: n for s, n in counts.items() if s not in EXPECTED}
        if unexpected:
            raise BenchError(f"spray: unexpected answers to api.login {unexpected}")

        def median_ms(state: str) -> float | None:
            lat = [a[2] for a in got if a[1] == state]
            return round(statistics.median(lat) * 1000, 1) if lat else None

        return {
            "seconds": round(seconds, 2),
            "answers": counts,
            "checked_per_s": round(counts.get("28P01", 0) / seconds, 1),
            "refused_per_s": round(counts.get("CM004", 0) / seconds, 1),
            "throttled": counts.get("CM001", 0),
            "checked_median_ms": median_ms("28P01"),
            "refused_median_ms": median_ms("CM004"),
        }


def run(
    url: str,
    *,
    pgbench: str,
    clients: int,
    connections: int,
    seconds: int,
    warmup: float,
    rounds: int,
    run_numbers: Iterator[int],
    on_step: Callable[[str, float], Any],
) -> dict[str, Any]:
    """The three modes, ``rounds`` rounds each, taking turns; each a ``seconds`` pgbench run."""
    with psycopg.connect(url, autocommit=True) as conn:
        settings = read_settings(conn)
    cores = os.cpu_count()

    # What the progress bar expects a round to take; stopping the unbounded spray
    # waits for every bcrypt in flight (bcrypt does not heed a cancel).
    weight = {
        "none": seconds + 1.0,
        "bounded": seconds + 1.0 + warmup,
        "unbounded": seconds + 1.0 + warmup + connections * 0.07 / (cores or 1),
    }

    def one_round(mode: str) -> dict[str, Any]:
        label = {
            "none": "no spray",
            "bounded": f"{connections} connections spraying logins",
            "unbounded": f"{connections} connections spraying logins, hashing unbounded",
        }[mode]
        with (
            on_step(f"spray: {clients} client(s), {label}", weight[mode]),
            psycopg.connect(url, autocommit=True) as conn,
            slots_set_to(url, UNBOUNDED_SLOTS) if mode == "unbounded" else contextlib.nullcontext(),
            Spray(url, connections) if mode != "none" else contextlib.nullcontext() as spray,
        ):
            throughput.truncate(conn)
            env.checkpoint(conn)
            if spray is not None:
                time.sleep(warmup)  # let the queue for the hashing slots settle
            prefix = throughput.session_prefix()
            cpu0, t0 = cpu_times(), time.perf_counter()
            fig = throughput.run_pgbench(
                pgbench,
                url,
                throughput.SCRIPTS["chatmem"],
                clients=clients,
                run=next(run_numbers) % 100,
                prefix=prefix,
                seconds=seconds,
                jobs=min(clients, cores or 1),
            )
            t1, cpu1 = time.perf_counter(), cpu_times()
            fig["cpu_busy_cores"] = busy_cores(cpu0, cpu1)
            if spray is not None:
                fig["spray"] = spray.window(t0, t1)
            if mode != "none":
                fig["max_concurrent_hashes"] = (
                    UNBOUNDED_SLOTS if mode == "unbounded" else settings["max_concurrent_hashes"]
                )
            throughput.verify_rows(conn, prefix, fig["transactions"])
        return fig

    with psycopg.connect(url, autocommit=True) as conn:
        if read_settings(conn) != settings:
            raise BenchError("spray: chatmem_settings changed before the section started")
    rounds_by_mode = throughput.interleaved(list(MODES), rounds, one_round)
    with psycopg.connect(url, autocommit=True) as conn:
        after = read_settings(conn)
    if after != settings:
        raise BenchError(f"spray: chatmem_settings not restored: {after} != {settings}")

    out: dict[str, Any] = {
        "settings": settings,
        "cores": cores,
        "clients": clients,
        "connections": connections,
        "unbounded_slots": UNBOUNDED_SLOTS,
        "warmup_s": warmup,
        "protocol": "prepared",
        "what": (
            "new guest sessions/s through api.create_or_get_session (pgbench) with no spray, "
            f"and while {connections} connections call api.login with random unknown emails; "
            "server, pgbench and spray share the machine's cores"
        ),
        "modes": {},
    }
    for mode, figs in rounds_by_mode.items():
        combined = throughput.combine_pgbench(figs)
        cpu = [f["cpu_busy_cores"] for f in figs if f["cpu_busy_cores"] is not None]
        combined["cpu_busy_cores"] = round(statistics.median(cpu), 2) if cpu else None
        combined["cpu_busy_cores_rounds"] = [f["cpu_busy_cores"] for f in figs]
        if mode != "none":
            combined["max_concurrent_hashes"] = figs[0]["max_concurrent_hashes"]
            sprays = [f["spray"] for f in figs]
            combined["spray"] = {
                key: _median([s[key] for s in sprays])
                for key in (
                    "checked_per_s",
                    "refused_per_s",
                    "checked_median_ms",
                    "refused_median_ms",
                )
            }
            totals: dict[str, int] = {}
            for s in sprays:
                for state, n in s["answers"].items():
                    totals[state] = totals.get(state, 0) + n
            combined["spray"]["answers"] = totals
            combined["spray"]["throttled"] = totals.get("CM001", 0)
            combined["spray_rounds"] = sprays
        out["modes"][mode] = combined
    none_tps = out["modes"]["none"]["tps"]
    for mode in ("bounded", "unbounded"):
        tps = out["modes"][mode]["tps"]
        out[f"{mode}_over_none"] = round(tps / none_tps, 3) if none_tps else float("inf")
    return out


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None
