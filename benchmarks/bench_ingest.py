"""Benchmark: ingestion of one business day at shop scale (1,000,000 orders/day, 100,000 SKUs).

Generates (and caches in ``benchmarks/cache/``) the simulated sources, lands the day before (the
opening stock and reference tables) as history, then times ``cardlake run`` for the day itself in
its own process: wall time, peak RSS, and rows/s per source. Writes
``benchmarks/results/<timestamp>-ingest.json``. Goal on a 2-core machine: ≤ 20 s for the day.

    python benchmarks/bench_ingest.py [--orders-per-day N] [--skus S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import machine, save

ROOT = Path(__file__).resolve().parent
DAY = dt.date(2026, 10, 13)  # a Tuesday, no promotion


def cardlake(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - started, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders-per-day", type=int, default=1_000_000)
    ap.add_argument("--skus", type=int, default=100_000)
    args = ap.parse_args()
    cache = ROOT / "cache" / f"shop-{args.orders_per_day}-{args.skus}-{DAY}"
    if not (cache / "_truth" / "manifest.json").exists():
        print(f"generating sources into {cache} (cached for later runs)…")
        _, proc = cardlake(
            "simulate",
            "--seed",
            "1",
            "--start",
            str(DAY),
            "--days",
            "1",
            "--orders-per-day",
            str(args.orders_per_day),
            "--skus",
            str(args.skus),
            "--out",
            str(cache),
        )
        if proc.returncode:
            print(proc.stdout, proc.stderr)
            return 1
    lake = ROOT / "cache" / "lake-ingest"
    shutil.rmtree(lake, ignore_errors=True)
    before = str(DAY - dt.timedelta(days=1))
    history_s, proc = cardlake(
        "run",
        "--sources",
        str(cache),
        "--lake",
        str(lake),
        "--start",
        before,
        "--end",
        before,
        "--skip-models",
    )
    if proc.returncode:
        print(proc.stdout, proc.stderr)
        return 1
    rss_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    day_s, proc = cardlake(
        "run",
        "--sources",
        str(cache),
        "--lake",
        str(lake),
        "--start",
        str(DAY),
        "--end",
        str(DAY),
        "--skip-models",  # ingestion alone; bench_models.py times the models on this lake
    )
    if proc.returncode:
        print(proc.stdout, proc.stderr)
        return 1
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rss_before)
    per_source = {}
    for state in sorted((lake / "_state").glob(f"*/business_date={DAY}.json")):
        s = json.loads(state.read_text())
        secs = s.get("seconds") or 0
        per_source[s["dataset"]] = {
            "read": s["read"],
            "landed": s["landed"],
            "seconds": secs,
            "rows_per_s": round(s["read"] / secs) if secs else None,
        }
    result = {
        "benchmark": "ingest",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "orders_per_day": args.orders_per_day,
        "skus": args.skus,
        "day_s": round(day_s, 2),
        "history_day_s": round(history_s, 2),
        "peak_rss_gib": round(peak / 2**20, 3),
        "per_source": per_source,
        "machine": machine(),
        "goal": {"day_s": 20},
    }
    save(result)
    print(
        f"ingest of {DAY} at {args.orders_per_day:,} orders/day: {day_s:.1f} s "
        f"(opening day {history_s:.1f} s), peak RSS {result['peak_rss_gib']:.2f} GiB"
    )
    print(f"{'source':<28}{'rows':>10}{'seconds':>9}{'rows/s':>10}")
    for name, row in per_source.items():
        print(f"{name:<28}{row['read']:>10,}{row['seconds']:>9.2f}{(row['rows_per_s'] or 0):>10,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
