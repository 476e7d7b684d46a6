"""The live path end to end, as it runs in production: the Dagster daemon (its sensors launch the
live runs) on a lake, the simulator adding orders to the shop databases in real time, and a
watcher that notes when each order is paid in the shop and when the served marts first count it.

Used by the live integration test and by ``benchmarks/bench_live.py`` (freshness p50/p95).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines.lib.calendar import CST

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@contextlib.contextmanager
def dagster_daemon(sources: Path, lake: Path, home: Path, log: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on the project's definitions, with the project's instance settings
    (run queue, concurrency limit on model builds) in a private DAGSTER_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CARDLAKE_SOURCES": str(sources),
        "CARDLAKE_LAKE": str(lake),
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def live_simulator(sources: Path, rate: float, seconds: float, log: Path) -> subprocess.Popen:
    """``cardlake simulate --live --resume``: real inserts and updates, paced in real time."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "simulate",
            "--out",
            str(sources),
            "--live",
            "--resume",
            "--rate",
            str(rate),
            "--live-seconds",
            str(seconds),
        ],
        cwd=REPO,
        stdout=open(log, "w"),  # the child process writes it
        stderr=subprocess.STDOUT,
    )


@dataclasses.dataclass
class Watch:
    """When each of today's orders was first seen paid in a shop database and first counted as
    paid in the served ``fct_orders``; publications seen; the served paid count of today."""

    paid: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    served: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    kpi_paid_orders: int = 0
    kpi_seen_at: float = 0.0
    errors: list[str] = dataclasses.field(default_factory=list)

    def latencies(self) -> list[float]:
        return sorted(self.served[k] - t for k, t in self.paid.items() if k in self.served)


def _paid_in_shop(sources: Path, day: dt.date) -> set[tuple[str, str]]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=CST)
    out: set[tuple[str, str]] = set()
    with contextlib.closing(sqlite3.connect(sources / "db" / "shop_main.sqlite", timeout=30)) as c:
        rows = c.execute(
            "select order_sn from orders where status between 2 and 6 and created_at >= ?",
            (start.strftime("%Y-%m-%d %H:%M:%S"),),
        ).fetchall()
        out |= {("main", r[0]) for r in rows}
    with contextlib.closing(
        sqlite3.connect(sources / "db" / "shop_substation.sqlite", timeout=30)
    ) as c:
        rows = c.execute(
            "select trade_no from acg_order where status = 1 and create_time >= ?",
            (start.strftime("%Y-%m-%d %H:%M:%S"),),
        ).fetchall()
        out |= {("substation", str(r[0])) for r in rows}
    return out


def _served(lake: Path, day: dt.date) -> tuple[set[tuple[str, str]], int]:
    path = lake / "warehouse.duckdb"
    con = duckdb.connect(
        str(path),
        read_only=True,
        config={"enable_external_access": False, "lock_configuration": True},
    )
    try:
        rows = con.execute(
            "select shop, native_order_no from fct_orders where is_paid and created_date = ?",
            [day],
        ).fetchall()
        kpi = con.execute(
            "select coalesce(sum(paid_orders), 0) from kpi_sales_daily "
            "where shop = 'all' and business_date = ?",
            [day],
        ).fetchone()
    finally:
        con.close()
    return {(r[0], str(r[1])) for r in rows}, int(kpi[0] if kpi else 0)


@contextlib.contextmanager
def watching(sources: Path, lake: Path, day: dt.date, every_s: float = 0.5) -> Iterator[Watch]:
    """Poll the shop databases and the served marts in a thread until the block ends."""
    watch = Watch()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            now = time.time()
            try:
                for key in _paid_in_shop(sources, day):
                    watch.paid.setdefault(key, now)
                served, kpi = _served(lake, day)
                for key in served:
                    watch.served.setdefault(key, time.time())
                if kpi != watch.kpi_paid_orders:
                    watch.kpi_paid_orders, watch.kpi_seen_at = kpi, time.time()
            except (sqlite3.Error, duckdb.Error, OSError) as exc:  # a moment of contention
                watch.errors.append(f"{type(exc).__name__}: {exc}")
            stop.wait(max(0.0, every_s - (time.time() - now)))

    thread = threading.Thread(target=loop, name="live-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(30)


class SessionCpu:
    """CPU seconds used by every process of a session (the daemon and all it starts: code
    server, runs, dbt), sampled from /proc: a killed tree is never reaped into our rusage."""

    def __init__(self, sid: int, every_s: float = 0.5) -> None:
        self.sid, self.every_s = sid, every_s
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sample", daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the command: state ppid pgrp session ... utime(12) stime(13)
            if int(fields[3]) == self.sid:
                cpu = (int(fields[11]) + int(fields[12])) / self._tick
                self.seen[int(entry.name)] = max(cpu, self.seen.get(int(entry.name), 0.0))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def __enter__(self) -> SessionCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._sample()
        self._stop.set()
        self._thread.join(5)

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def wait_until(predicate, timeout_s: float, every_s: float = 1.0) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()
