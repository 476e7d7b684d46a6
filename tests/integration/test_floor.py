"""The benchmark floor (benchmarks/floor.py running benchmarks/floor.sql) computes the same core
marts as the daily cycle: run as the cycle benchmark runs it (its own process, the JSON result on
the last line) on the published test shop, for its last day and for a day in the middle, and
checked against the marts the cycle published; only the columns the floor documents as omitted
may differ. No timings are asserted."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARTS = ("fct_orders", "kpi_sales_daily", "kpi_refunds_daily", "kpi_inventory_daily")
OMITTED = {
    "fct_orders": ["user_key"],
    "kpi_sales_daily": ["buyers", "new_buyers", "customer_unit_price_fen"],
}


def _published_days(lake: Path) -> list[dt.date]:
    folder = lake / "marts" / "fct_orders"
    return sorted(dt.date.fromisoformat(p.name.split("=", 1)[1]) for p in folder.iterdir())


def _floor(sources: Path, lake: Path, day: dt.date, out: Path) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/floor.py",
            "--sources",
            str(sources),
            "--day",
            day.isoformat(),
            "--out",
            str(out),
            "--check-lake",
            str(lake),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr[-3000:]


@pytest.mark.parametrize("which", ["last", "middle"])
def test_the_floor_computes_the_marts_the_cycle_published(served_shop, tmp_path, which):
    days = _published_days(served_shop.lake)
    day = days[-1] if which == "last" else days[len(days) // 2]
    status, result, stderr = _floor(served_shop.sources, served_shop.lake, day, tmp_path / "out")
    assert result, stderr
    disagreements = {m: e for m, e in result["check"].items() if not e["agree"]}
    assert status == 0 and result["agree"], json.dumps(disagreements, indent=1, default=str)

    assert result["omitted_columns"] == OMITTED
    for mart in MARTS:
        entry = result["check"][mart]
        # the same rows on both sides, and real ones: a day of a shop has orders and stock
        assert entry["rows_both"] == result["rows"][mart] > 0, (mart, entry)
        assert entry["rows_only_lake"] == entry["rows_only_floor"] == 0
        assert entry["columns_differ"] == {}
        assert (tmp_path / "out" / f"{mart}.parquet").exists()
    # the script's assumptions (order window, statement and supplier lookups) held
    assert result["self_checks"] == dict.fromkeys(result["self_checks"], 0)
    assert result["floor_s"] > 0 and set(result["steps_s"]) >= {"load_databases", "write"}


def test_the_check_reports_a_difference(served_shop, tmp_path):
    """The check is not blind: a published mart that differs from the floor's makes it fail, with
    the column and an example."""
    import shutil

    import duckdb

    day = _published_days(served_shop.lake)[-1]
    lake = tmp_path / "lake"
    # a lake that differs from the published one only in one value of one mart of the day
    for sub in ("marts", "raw"):
        shutil.copytree(served_shop.lake / sub, lake / sub)
    part = lake / "marts" / "kpi_sales_daily" / f"business_date={day}" / "part-0.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"copy (select * replace (case when shop = 'all' then gmv_fen + 1 else gmv_fen end "
            f"as gmv_fen) from read_parquet('{part}')) to '{tmp_path / 'p.parquet'}' (format parquet)"
        )
    shutil.copy(tmp_path / "p.parquet", part)
    status, result, stderr = _floor(served_shop.sources, lake, day, tmp_path / "out")
    assert status == 1, stderr
    sales = result["check"]["kpi_sales_daily"]
    assert not sales["agree"] and sales["columns_differ"]["gmv_fen"]["rows"] == 1
    assert sales["columns_differ"]["gmv_fen"]["examples"][0]["key"] == ["all"]
    assert all(result["check"][m]["agree"] for m in MARTS if m != "kpi_sales_daily")
