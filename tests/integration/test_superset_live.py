"""Dashboards keep answering while ``cardlake run`` publishes a new snapshot.

Superset opens ``lake/warehouse.duckdb`` read-only, per query; the publisher builds the next
version in ``lake/_serving/`` and swaps the link to it. So chart queries issued before, during and
after a run all answer, and the ones after it see the new publication.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.integration


def _dataset_ids(session, url: str) -> dict[str, int]:
    r = session.get(f"{url}/api/v1/dataset/", params={"q": "(page_size:100)"}, timeout=30)
    r.raise_for_status()
    return {d["table_name"]: d["id"] for d in r.json()["result"]}


def _chart_query(dataset_id: int, metrics: list[str], columns: list[str]) -> dict:
    """What a dashboard chart sends: saved metrics by name, no cache (``force``)."""
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": True,
        "queries": [
            {
                "metrics": metrics,
                "columns": columns,
                "filters": [],
                "orderby": [],
                "row_limit": 1000,
            }
        ],
        "result_format": "json",
        "result_type": "full",
    }


def _run_id(lake) -> str:
    with duckdb.connect(
        str(lake / "warehouse.duckdb"),
        read_only=True,
        config={"enable_external_access": False, "lock_configuration": True},
    ) as con:
        return con.execute("select max(run_id) from _publication").fetchone()[0]


def test_dashboards_answer_while_a_run_publishes(superset_server, served_shop):
    url = superset_server.url
    session = superset_server.login("manager")
    ids = _dataset_ids(superset_server.login("admin"), url)
    queries = [
        _chart_query(
            ids["kpi_sales_daily"], ["gmv_yuan", "paid_orders"], ["business_date", "shop"]
        ),
        _chart_query(ids["kpi_refunds_by_supplier"], ["refund_rate"], ["supplier_code"]),
        _chart_query(ids["kpi_inventory_overall"], ["stock_units"], ["business_date"]),
        _chart_query(ids["publication_log"], ["minutes_since"], []),
    ]
    before = _run_id(served_shop.lake)

    answers: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def viewer() -> None:
        i = 0
        while not stop.is_set():
            r = session.post(f"{url}/api/v1/chart/data", json=queries[i % len(queries)], timeout=60)
            error = "" if r.ok else r.text[:300]
            if r.ok and any(q.get("error") for q in r.json()["result"]):
                error = str([q.get("error") for q in r.json()["result"]])[:300]
            answers.append((time.monotonic(), r.status_code, error))
            i += 1

    last_day = served_shop.cfg.start + dt.timedelta(days=served_shop.cfg.days - 1)
    threads = [threading.Thread(target=viewer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        started = time.monotonic()
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "cardlake"),
                "run",
                "--sources",
                str(served_shop.sources),
                "--lake",
                str(served_shop.lake),
                "--start",
                f"{last_day}",
                "--end",
                f"{last_day}",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
            check=False,
        )
        finished = time.monotonic()
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)

    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    after = _run_id(served_shop.lake)
    assert after != before, "the run published no new snapshot"
    errors = [a for a in answers if a[1] != 200 or a[2]]
    during = [a for a in answers if started <= a[0] <= finished]
    assert not errors, f"{len(errors)} of {len(answers)} chart queries failed: {errors[:3]}"
    assert len(during) >= 10, f"only {len(during)} chart queries ran during the run"
    assert any(a[0] > finished for a in answers), "no chart query after the publication"
