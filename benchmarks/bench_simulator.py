"""Benchmark: the simulator at shop scale (default 1,000,000 orders/day over 100,000 SKUs, one day).

Runs ``cardlake simulate`` as a separate process and reports wall time and peak RSS; writes
``benchmarks/results/<timestamp>-simulator.json``. Goal on a 2-core machine: ≤ 60 s, ≤ 4 GiB.

    python benchmarks/bench_simulator.py [--orders-per-day N] [--skus S] [--days D]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, save

ROOT = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders-per-day", type=int, default=1_000_000)
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--start", default="2026-10-13")  # a Tuesday, no promotion: a plain day
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cardlake-bench-") as tmp:
        out = Path(tmp) / "sources"
        cmd = [
            sys.executable,
            "-m",
            "pipelines.cli",
            "simulate",
            "--seed",
            "1",
            "--start",
            args.start,
            "--days",
            str(args.days),
            "--orders-per-day",
            str(args.orders_per_day),
            "--skus",
            str(args.skus),
            "--out",
            str(out),
        ]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if proc.returncode:
            print(proc.stdout, proc.stderr, sep="\n")
            return proc.returncode
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    result = {
        "benchmark": "simulator",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "orders_per_day": args.orders_per_day,
        "skus": args.skus,
        "days": args.days,
        "wall_s": round(wall, 2),
        "peak_rss_gib": round(peak_kib / 2**20, 3),
        "sources_mib": round(size / 2**20, 1),
        "machine": machine(),
        "goal": {"wall_s": 60, "peak_rss_gib": 4},
    }
    save(result)
    print(
        f"{'benchmark':<12}{'orders/day':>12}{'skus':>9}{'days':>6}{'wall s':>9}{'peak GiB':>10}{'MiB out':>9}"
    )
    print(
        f"{'simulator':<12}{args.orders_per_day:>12,}{args.skus:>9,}{args.days:>6}"
        f"{wall:>9.1f}{result['peak_rss_gib']:>10.2f}{result['sources_mib']:>9.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
