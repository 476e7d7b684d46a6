"""Benchmark: live freshness. The time from an order being paid in the shop to it being counted
in the served marts, with the shop selling at a sustained rate (default 50 orders/s), through the
production path: the Dagster daemon's live sensor launching live runs (land today's shop tables,
rebuild today's models, publish, sync tickets), on a lake holding a few days of history.

Reports p50/p95/max over every order paid while the simulator ran (at least 100), the live runs'
cycle, and the CPU share of the live loop: the CPU time of the daemon and every process it
started (sensor evaluations, the live session, dbt), sampled from /proc, over the wall time × the
machine's cores; the simulator is not part of it.

    python benchmarks/bench_live.py [--rate 50] [--seconds 150] [--orders-per-day 20000]

Writes ``benchmarks/results/<timestamp>-live.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, save

from pipelines.lib.calendar import business_today
from simulator.live_harness import (
    SessionCpu,
    dagster_daemon,
    live_simulator,
    percentile,
    wait_until,
    watching,
)

ROOT = Path(__file__).resolve().parents[1]


def _cardlake(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the shop sells")
    parser.add_argument("--orders-per-day", type=int, default=20000, help="history per day")
    parser.add_argument("--history-days", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cardlake-bench-live-"))
    src, lake = work / "src", work / "lake"
    today = business_today()
    first = today - dt.timedelta(days=args.history_days)
    print(f"history: {args.history_days} days × {args.orders_per_day:,} orders in {work}")
    _cardlake("simulate", "--seed", "5", "--start", first.isoformat(), "--days",
              str(args.history_days), "--orders-per-day", str(args.orders_per_day), "--out", str(src))  # fmt: skip
    _cardlake("run", "--sources", str(src), "--lake", str(lake))

    started = time.time()
    with dagster_daemon(src, lake, work / "dagster", work / "daemon.log") as daemon:
        with SessionCpu(daemon.pid) as cpu, watching(src, lake, today) as watch:
            sim = live_simulator(src, args.rate, args.seconds, work / "simulator.log")
            sim.wait()
            selling_ended = time.time()
            caught_up = wait_until(
                lambda: set(watch.paid) <= set(watch.served), timeout_s=300, every_s=1
            )
        window = time.time() - started
    paid_while_selling = {k: t for k, t in watch.paid.items() if t <= selling_ended}
    latencies = sorted(
        watch.served[k] - t for k, t in paid_while_selling.items() if k in watch.served
    )
    passes = _passes(work / "daemon.log")
    result = {
        "benchmark": "live",
        "machine": machine(),
        "rate_orders_per_s": args.rate,
        "selling_s": args.seconds,
        "history": {"days": args.history_days, "orders_per_day": args.orders_per_day},
        "orders_paid": len(paid_while_selling),
        "orders_measured": len(latencies),
        "caught_up": caught_up,
        "freshness_p50_s": round(percentile(latencies, 50), 1) if latencies else None,
        "freshness_p95_s": round(percentile(latencies, 95), 1) if latencies else None,
        "freshness_max_s": round(max(latencies), 1) if latencies else None,
        "passes": passes,
        # the daemon and every process it started, over the window × the machine's cores
        "cpu_share": round(cpu.seconds / (window * (os.cpu_count() or 1)), 3),
        "cpu_s": round(cpu.seconds, 1),
        "window_s": round(window, 1),
        "watch_errors": len(watch.errors),
    }
    path = save(result)
    print(
        f"freshness over {len(latencies)} orders at {args.rate:g} orders/s: "
        f"p50 {result['freshness_p50_s']} s, p95 {result['freshness_p95_s']} s, "
        f"max {result['freshness_max_s']} s; live loop CPU {result['cpu_share']:.0%} of "
        f"{os.cpu_count()} cores → {path}"
    )
    shutil.rmtree(work, ignore_errors=True)


def _passes(log: Path) -> dict:
    """The live sessions' passes in the daemon's log: how many, and their times (p50)."""
    import re

    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.findall(
        r"pass \d+: .*? landed in ([\d.]+) s, (\d+) models and (\d+) tests in ([\d.]+) s, "
        r"published in ([\d.]+) s",
        text,
    )
    if not found:
        return {"count": 0}
    land, dbt, publish = ([float(f[i]) for f in found] for i in (0, 3, 4))
    return {
        "count": len(found),
        "models": int(found[-1][1]),
        "tests": int(found[-1][2]),
        "land_s_p50": percentile(land, 50),
        "dbt_s_p50": percentile(dbt, 50),
        "publish_s_p50": percentile(publish, 50),
        "pass_s_p50": percentile(
            [a + b + c for a, b, c in zip(land, dbt, publish, strict=True)], 50
        ),
    }


if __name__ == "__main__":
    main()
