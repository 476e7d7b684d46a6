"""Benchmark: the settlement reports (channel statement checks per statement day, supplier
payables per month; CSV + XLSX + PDF each, tied out) at shop scale, on the serving file that
bench_models.py published (``benchmarks/cache/lake-models/warehouse.duckdb``, run that first), or
on any lake given as an argument.

The reports are produced in a separate process into a scratch lake holding only a copy of the
serving file (reports read nothing else), so the lake under test keeps its own reports. A month
of reports is projected from the measured ones: 30 statement days × the channels' reports, each
supplier's month scaled by 30 / the days the closed months hold (a pessimistic bound: the
workbook's detail is one row per SKU whatever the month's length), the workers' start-up once.
Writes ``benchmarks/results/<timestamp>-settlement.json``.

    python benchmarks/bench_settlement.py [LAKE]
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, save

ROOT = Path(__file__).resolve().parent
CHILD = """
import json, sys, time
from pathlib import Path
from pipelines.lib.publish import open_warehouse
from pipelines.lib.settlement import due_reports, produce
lake = Path(sys.argv[1])
con = open_warehouse(lake); keys = due_reports(con)
items = con.execute("select count(*) from rpt_channel_reconciliation").fetchone()[0]
days = con.execute(
    "select count(distinct l.business_date) from rpt_supplier_payable_lines l join "
    "(select distinct period_start from rpt_supplier_payable where period = 'month' and is_closed) m "
    "on date_trunc('month', l.business_date) = m.period_start").fetchone()[0]
con.close()
out = {"items": items, "supplier_days": days, "reports": []}
t0 = time.perf_counter()
for kind in ("channel", "supplier"):
    chosen = [k for k in keys if k.kind == kind]
    t = time.perf_counter()
    outcomes = produce(lake, keys=chosen)
    out[kind + "_s"] = time.perf_counter() - t
    out["reports"] += [[str(o.key), o.status] for o in outcomes]
out["total_s"] = time.perf_counter() - t0
# steady state: the channel reports again, five times over, through the same two workers (a
# month has sixty; six reports mostly measure the workers warming up)
import datetime as dt, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pipelines.lib import settlement
channel = [k for k in keys if k.kind == "channel"]
batch = [(str(lake / f"rep{i}"), k) for i in range(5) for k in channel]
t = time.perf_counter()
with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                         initializer=settlement._worker_init, initargs=(str(lake),)) as pool:
    list(pool.map(len, ["a", "b"]))
    out["startup_s"] = time.perf_counter() - t
    t = time.perf_counter()
    list(pool.map(settlement._produce_in, [b[0] for b in batch], [b[1] for b in batch]))
    out["steady_channel_reports"] = len(batch)
    out["steady_channel_s"] = time.perf_counter() - t
print(json.dumps(out))
"""


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "cache" / "lake-models"
    if not (source / "warehouse.duckdb").exists():
        print(f"no serving file in {source}: run `python benchmarks/bench_models.py` first")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-settlement-") as scratch:
        lake = Path(scratch)
        shutil.copy2(source / "warehouse.duckdb", lake / "warehouse.duckdb")
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(lake)], capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return 1
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    channel = [r for r in child["reports"] if r[0].startswith("channel")]
    supplier = [r for r in child["reports"] if r[0].startswith("supplier")]
    startup = child["startup_s"]
    per_channel_day = child["steady_channel_s"] / max(child["steady_channel_reports"], 1)
    channels = len({r[0].split()[1] for r in channel}) or 2
    # a supplier month's workbook is bounded by its SKUs, its CSV and queries grow with the
    # days: scaling the whole measured time by the days is the pessimistic bound
    scale = 30 / max(child["supplier_days"], 1)
    supplier_s = max(child["supplier_s"] - startup, 0.0) if supplier else 0.0
    month_s = per_channel_day * channels * 30 + supplier_s * scale + startup
    result = {
        "benchmark": "settlement",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lake": str(source),
        "reconciliation_items": child["items"],
        "channel_reports": len(channel),
        "supplier_reports": len(supplier),
        "channel_s": round(child["channel_s"], 2),
        "supplier_s": round(child["supplier_s"], 2),
        "per_channel_day_s": round(per_channel_day, 2),
        "worker_startup_s": round(startup, 2),
        "month_projection_s": round(month_s, 1),
        "wall_s": round(wall, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 3),
        "machine": machine(),
    }
    save(result)
    print(
        f"settlement: {len(channel)} channel-day reports ({child['items']:,} items) in "
        f"{child['channel_s']:.1f} s, {len(supplier)} supplier months in "
        f"{child['supplier_s']:.1f} s; a month of reports ≈ {month_s:.0f} s; "
        f"peak RSS {result['peak_rss_gib']:.2f} GiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
