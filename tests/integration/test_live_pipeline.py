"""The live path end to end: the simulator sells in real time, the Dagster daemon's live sensor
lands, models and publishes today's data run after run, and the served marts follow; afterwards
today's marts equal what the nightly run makes of the same sources.

How fast is the benchmark's business (benchmarks/bench_live.py, freshness p50/p95 at 50 orders/s);
this test records the latencies it saw and asserts what must hold whatever the machine's load.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.calendar import business_today
from pipelines.lib.contracts import load_contracts
from pipelines.lib.lake import Lake
from pipelines.lib.live import changed_tables
from pipelines.lib.writer import busy
from simulator.live_harness import (
    dagster_daemon,
    live_simulator,
    percentile,
    wait_until,
    watching,
)
from tests.conftest import cardlake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTEFACTS = Path(__file__).resolve().parents[2] / "artefacts"


def _urls(src: Path) -> dict[str, str]:
    return {
        "main": f"sqlite:///{src / 'db' / 'shop_main.sqlite'}",
        "substation": f"sqlite:///{src / 'db' / 'shop_substation.sqlite'}?table_prefix=acg_",
    }


def _day_rows(lake: Path, day: dt.date) -> dict[str, list]:
    """Every served mart with a business_date column: its rows of ``day``, sorted.

    Of ``dq_daily`` and ``alert_signals_daily``, not the rows about the statement, CRM and
    supplier files: the nightly run also lands the day's files (none have arrived at 00:30: it
    records empty partitions, which those marts account for), the live path lands the shop
    databases only."""
    files = [c.dataset for c in load_contracts().values() if c.source["kind"] != "database"]
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    try:
        marts = [
            r[0]
            for r in con.execute(
                "select table_name from duckdb_columns() where column_name = 'business_date' "
                "and schema_name = 'main' and table_name not like '\\_%' escape '\\' order by 1"
            ).fetchall()
        ]
        out = {}
        for m in marts:
            about = {"dq_daily": "subject", "alert_signals_daily": "entity"}.get(m)
            query = f'select * from "{m}" where business_date = ?'
            if about:
                query += f" and not list_contains(?, {about})"
            rows = con.execute(query, [day, files] if about else [day]).fetchall()
            out[m] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def test_live_orders_reach_the_served_marts_and_the_day_converges_on_the_nightly_run(
    tmp_path: Path,
) -> None:
    today = business_today()
    src, lake, batch = tmp_path / "src", tmp_path / "lake", tmp_path / "batch"
    first = (today - dt.timedelta(days=3)).isoformat()
    made = cardlake(
        "simulate", "--seed", "11", "--start", first, "--days", "3", "--orders-per-day", "300",
        "--skus", "60", "--out", str(src),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    ran = cardlake("run", "--sources", str(src), "--lake", str(lake))
    assert ran.returncode == 0, ran.stdout + ran.stderr

    urls = _urls(src)
    daemon_log = tmp_path / "daemon.log"
    with (
        dagster_daemon(src, lake, tmp_path / "dagster", daemon_log),
        watching(src, lake, today) as watch,
    ):
        sim = live_simulator(src, rate=3, seconds=150, log=tmp_path / "simulator.log")
        assert sim.wait(300) == 0, (tmp_path / "simulator.log").read_text()[-2000:]
        sim_ended = time.time()

        def caught_up() -> bool:
            # in this order: a pass that has landed the last changes (none left to land) holds
            # the lake until it has published them, so the lake must also be free
            return (
                bool(watch.paid)
                and set(watch.paid) <= set(watch.served)
                and watch.kpi_paid_orders == len(watch.served)
                and not changed_tables(Lake(lake), urls, today)
                and not busy(lake)
            )

        # an event (every paid order served, nothing left to land, no pass publishing), with a bound generous enough
        # for a loaded 2-core machine: the normal case returns as soon as the day has caught up
        converged = wait_until(caught_up, timeout_s=900, every_s=2)
        log = daemon_log.read_text()
        assert converged, (
            f"paid {len(watch.paid)}, served {len(watch.served)}, kpi {watch.kpi_paid_orders}; "
            f"daemon log:\n{log[-4000:]}"
        )
    assert len(watch.paid) >= 30, f"the simulator paid only {len(watch.paid)} orders"
    latencies = watch.latencies()
    # every paid order is counted once in the day's KPI (no duplicates, nothing lost)
    assert watch.kpi_paid_orders == len(watch.paid)
    ARTEFACTS.mkdir(exist_ok=True)
    (ARTEFACTS / "live_freshness.json").write_text(
        json.dumps(
            {
                "orders": len(latencies),
                "p50_s": round(percentile(latencies, 50), 1),
                "p95_s": round(percentile(latencies, 95), 1),
                "max_s": round(max(latencies), 1),
                "watch_errors": len(watch.errors),
            },
            indent=1,
        )
    )

    # the nightly run over the same sources, into a fresh lake, gives the same day
    nightly = cardlake("run", "--sources", str(src), "--lake", str(batch))
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    live_day, batch_day = _day_rows(lake, today), _day_rows(batch, today)
    assert set(live_day) == set(batch_day)
    assert live_day["fct_orders"], "today has no orders in the served marts"
    for mart in sorted(batch_day):
        assert live_day[mart] == batch_day[mart], f"{mart}: live and nightly differ for {today}"
    # live, not one catch-up at the end: orders were served while the shop was still selling
    during = [k for k, t in watch.served.items() if t < sim_ended]
    assert during, "no order was served while the simulator ran"
