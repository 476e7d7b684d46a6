"""Benchmark: the modelling step (dbt build of every model and test, then publishing) for one
business day at shop scale (1,000,000 orders/day, 100,000 SKUs), on the lake bench_ingest.py
landed (``benchmarks/cache/lake-ingest``, run that first).

Each run is a separate process on a fresh copy of the landed lake (no build file yet, as on a
first run), timed end to end, with dbt's own per-model times from its run results. Writes
``benchmarks/results/<timestamp>-models.json``.

    python benchmarks/bench_models.py
"""

from __future__ import annotations

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
DAY = dt.date(2026, 10, 13)  # the day bench_ingest.py lands
CHILD = """
import datetime as dt, json, sys, time
from pipelines import cycle
t = time.perf_counter()
run = cycle.Cycle.configure(lake=sys.argv[1])
days = [dt.date.fromisoformat(d) for d in sys.argv[2:]]
m = cycle.build_models(run, days)
p = cycle.publish(run, days)
print(json.dumps({"dbt_s": m.seconds, "publish_s": p.seconds,
                  "models": len(m.models), "tests": m.tests, "total_s": time.perf_counter() - t}))
"""


def main() -> int:
    source = ROOT / "cache" / "lake-ingest"
    if not (source / "raw").exists():
        print("no landed lake: run `python benchmarks/bench_ingest.py` first")
        return 1
    lake = ROOT / "cache" / "lake-models"
    shutil.rmtree(lake, ignore_errors=True)
    shutil.copytree(source, lake, ignore=shutil.ignore_patterns("_build", "marts", "warehouse*"))
    days = [str(DAY - dt.timedelta(days=1)), str(DAY)]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(lake), *days], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return 1
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    runs = json.loads((lake / "_build" / "dbt_target" / "run_results.json").read_text())
    slowest = sorted(
        ((r["execution_time"], r["unique_id"].split(".")[-1]) for r in runs["results"]),
        reverse=True,
    )[:10]
    result = {
        "benchmark": "models",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "orders_per_day": 1_000_000,
        "day": str(DAY),
        "wall_s": round(wall, 2),
        "dbt_s": round(child["dbt_s"], 2),
        "publish_s": round(child["publish_s"], 2),
        "models": child["models"],
        "tests": child["tests"],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 3),
        "slowest_nodes_s": {name: round(t, 2) for t, name in slowest},
        "machine": machine(),
    }
    save(result)
    print(
        f"models for {DAY} at 1,000,000 orders/day: {wall:.1f} s (dbt {child['dbt_s']:.1f} s, "
        f"publish {child['publish_s']:.1f} s), peak RSS {result['peak_rss_gib']:.2f} GiB"
    )
    for name, t in result["slowest_nodes_s"].items():
        print(f"  {name:<48}{t:>8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
