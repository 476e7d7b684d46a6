"""Benchmark: live freshness. The time from an order being paid in the shop to it being counted
in the served marts, with the shop selling at a sustained rate (default 50 orders/s), through the
production path: the Dagster daemon's live sensor launching live runs (land today's shop tables,
rebuild today's models, publish, sync tickets), on a lake holding a few days of history.

Reports p50/p95/max over every order paid while the simulator ran (at least 100), the live runs'
cycle, and the CPU share of the live loop: the CPU time of the daemon and every process it
started (sensor evaluations, runs, dbt), over the wall time × the machine's cores. The
simulator's own CPU is measured apart and left out.

    python benchmarks/bench_live.py [--rate 50] [--seconds 150] [--orders-per-day 20000]

Writes ``benchmarks/results/<timestamp>-live.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_harness import (  # noqa: E402 (the repo root joins the path first)
    business_today,
    dagster_daemon,
    live_simulator,
    percentile,
    wait_until,
    watching,
)


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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

    cpu_before = _cpu_children()
    started = time.time()
    with dagster_daemon(src, lake, work / "dagster", work / "daemon.log"):
        with watching(src, lake, today) as watch:
            sim = live_simulator(src, args.rate, args.seconds, work / "simulator.log")
            _, status, sim_usage = os.wait4(sim.pid, 0)
            sim.returncode = os.waitstatus_to_exitcode(status)
            sim_cpu = sim_usage.ru_utime + sim_usage.ru_stime
            selling_ended = time.time()
            caught_up = wait_until(
                lambda: set(watch.paid) <= set(watch.served), timeout_s=300, every_s=1
            )
        window = time.time() - started
    cpu = _cpu_children() - cpu_before - sim_cpu  # the daemon tree, reaped when it stopped
    paid_while_selling = {k: t for k, t in watch.paid.items() if t <= selling_ended}
    latencies = sorted(
        watch.served[k] - t for k, t in paid_while_selling.items() if k in watch.served
    )
    runs = _live_runs(work / "daemon.log")
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
        "live_runs": runs,
        "cpu_share": round(cpu / (window * (os.cpu_count() or 1)), 3),
        "cpu_s": round(cpu, 1),
        "simulator_cpu_s": round(sim_cpu, 1),
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


def _live_runs(log: Path) -> dict:
    """The live runs in the daemon's log: how many, how many succeeded, and their durations."""
    import re

    text = log.read_text(errors="replace") if log.exists() else ""
    pattern = re.compile(
        r"^(\S+ \S+) \+0000 - dagster - \w+ - live_job - (\S+) - .*?(RUN_START|RUN_SUCCESS|RUN_FAILURE)",
        re.M,
    )
    starts, seconds, failed = {}, [], 0
    for moment, run, kind in pattern.findall(text):
        at = dt.datetime.fromisoformat(moment)
        if kind == "RUN_START":
            starts[run] = at
        elif run in starts:
            seconds.append((at - starts[run]).total_seconds())
            failed += kind == "RUN_FAILURE"
    return {
        "runs": len(starts),
        "failed": failed,
        "run_s_p50": round(percentile(seconds, 50), 1) if seconds else None,
        "run_s_max": round(max(seconds), 1) if seconds else None,
    }


if __name__ == "__main__":
    main()
