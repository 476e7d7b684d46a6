"""The cycle, declared once (``pipelines.cycle``): the same sources through `cardlake run`,
through the Dagster job and through live passes give the same lake, mart by mart; whichever path
ran, the Dagster instance shows what it did (through the webserver's GraphQL API, as the UI reads
it); dbt parses the project once, not on every run."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from pipelines import cycle
from pipelines.lib.contracts import load_contracts
from pipelines.lib.lake import Lake
from pipelines.lib.publish import open_warehouse
from simulator.build import simulate
from simulator.config import SimConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOP = {"seed": 5, "start": dt.date(2026, 10, 5), "days": 3, "orders_per_day": 300, "skus": 60}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    return simulate(SimConfig(**SHOP), tmp_path_factory.mktemp("cycle") / "sources").out


@pytest.fixture(scope="module")
def days(shop: Path) -> list[dt.date]:
    return cycle.source_days(cycle.Cycle.configure(shop))


@pytest.fixture(scope="module")
def cli_lake(shop: Path, tmp_path_factory) -> tuple[Path, Path]:
    """`cardlake run` over every day, recorded in a Dagster instance of its own."""
    base = tmp_path_factory.mktemp("cli")
    lake, home = base / "lake", base / "dagster"
    home.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--sources", str(shop), "--lake", str(lake)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DAGSTER_HOME": str(home), "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "recorded in Dagster as run" in proc.stdout
    return lake, home


def _dagster_lake(shop: Path, lake: Path, days: list[dt.date]) -> None:
    """The schedule's job, `daily_cycle_job`, one business-day partition after another."""
    from pipelines.defs import STAGE_ASSETS
    from pipelines.defs.daily import daily_cycle_job
    from pipelines.resources import default_resources

    defs = dg.Definitions(
        assets=[a for assets in STAGE_ASSETS.values() for a in assets],
        jobs=[daily_cycle_job],
        resources=default_resources(shop, lake),
    )
    job = defs.resolve_job_def("daily_cycle_job")
    with dg.DagsterInstance.ephemeral() as instance:
        for day in days:
            result = job.execute_in_process(
                partition_key=day.isoformat(), instance=instance, raise_on_error=False
            )
            assert result.success, day


def _live_lake(shop: Path, lake: Path, days: list[dt.date]) -> None:
    """The nightly cycle up to the day before the last; the last day first through live passes
    (today's shop tables, the models they feed, publishing), then its nightly run."""
    run = cycle.Cycle.configure(shop, lake)
    assert cycle.run(run, cycle.Scope(days=tuple(days[:-1]))).failed_landing is None
    for _ in range(2):  # a second pass over unchanged tables changes nothing
        passed = cycle.run(run, cycle.live_scope(days[-1]))
        assert passed.failed_landing is None and passed.models.models
        assert [s.stage for s in passed.stages] == ["land", "models", "publish", "tickets"]
        with open_warehouse(lake) as con:
            (orders,) = con.execute(
                "select count(*) from fct_orders where business_date = ?", [days[-1]]
            ).fetchone()
        assert orders > 0  # the live day is served before its nightly run
    assert cycle.run(run, cycle.Scope(days=(days[-1],))).failed_landing is None


def _marts(lake: Path) -> dict[str, list[tuple]]:
    with open_warehouse(lake) as con:
        names = [
            n
            for (n,) in con.execute(
                # the publication's own rows say when and how each lake was published, not what
                "select table_name from duckdb_tables() where schema_name = 'main' "
                "and table_name not in ('_publication', '_publication_storage') order by 1"
            ).fetchall()
        ]
        return {n: con.execute(f'select * from "{n}" order by all').fetchall() for n in names}


def test_cli_dagster_job_and_live_passes_give_the_same_lake(cli_lake, shop, days, tmp_path):
    cli = _marts(cli_lake[0])
    _dagster_lake(shop, tmp_path / "dagster", days)
    _live_lake(shop, tmp_path / "live", days)
    assert len(cli) > 15
    for path in ("dagster", "live"):
        other = _marts(tmp_path / path)
        assert sorted(other) == sorted(cli), path
        for mart, rows in cli.items():
            assert other[mart] == rows, (path, mart)


def test_the_next_run_does_not_parse_the_dbt_project_again(cli_lake, shop, days, tmp_path):
    """The days travel outside dbt's parse inputs: a run with other days than the last one
    reuses the parsed project (dbt's log says it found no change to parse)."""
    lake = tmp_path / "lake"
    shutil.copytree(cli_lake[0], lake, symlinks=True)
    run = cycle.Cycle.configure(shop, lake)
    log = Lake(lake).dbt_logs / "dbt.log"
    for day in days[-2:]:
        before = log.stat().st_size if log.exists() else 0
        cycle.build_models(run, [day])
        text = log.read_bytes()[before:].decode(errors="replace")
        parse = [ln for ln in text.splitlines() if "partial pars" in ln.lower()]
    # the copy moved the lake (a new path re-parses once); the next run parses nothing
    assert any("no changes found, skipping parsing" in ln for ln in parse), parse
    assert not any("Unable to do partial parsing" in ln for ln in parse), parse


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QUERY = """
query {
  assetNodes {
    assetKey { path }
    isPartitioned
    partitionStats { numMaterialized }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
  runsOrError(filter: {pipelineName: "cardlake_run"}) {
    ... on Runs { results { status tags { key value } } }
  }
}
"""


def test_the_dagster_ui_shows_what_cardlake_run_did(cli_lake, shop, days):
    """The webserver over the project's definitions and the run's instance: the run, every asset
    of the landed days materialized (raw tables, models, the serving file, tickets), and every
    check's result on its latest materialization."""
    lake, home = cli_lake
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "CARDLAKE_LAKE": str(lake)}
    env["CARDLAKE_SOURCES"] = str(shop)
    web = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "pipelines.definitions", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 240  # loading the definitions parses the dbt manifest
        while True:
            assert web.poll() is None, "the webserver exited"
            try:
                answer = requests.post(url, json={"query": QUERY}, timeout=60)
                if answer.ok and "assetNodes" in (answer.json().get("data") or {}):
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the webserver did not answer"
            time.sleep(1)
        data = answer.json()["data"]
    finally:
        web.terminate()
        web.wait(timeout=60)
    runs = data["runsOrError"]["results"]
    assert [r["status"] for r in runs] == ["SUCCESS"]
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["cardlake/days"] == f"{days[0]}..{days[-1]}"
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    expected = {c.asset_name for c in load_contracts().values()}
    expected |= {"stg_shop__orders", "fct_orders", "kpi_sales_daily", "warehouse", "alert_tickets"}
    assert expected <= set(nodes)
    # every asset of the cycle (the partitioned ones: the lake's own state files dbt reads are
    # external sources), reports aside (due only once a statement day is complete)
    short = {
        name: n["partitionStats"]["numMaterialized"]
        for name, n in nodes.items()
        if n["isPartitioned"]
        and not name.startswith("settlement_")
        and n["partitionStats"]["numMaterialized"] != len(days)
    }
    assert not short, short
    checks = [
        (name, c["name"], (c["executionForLatestMaterialization"] or {}).get("status"))
        for name, n in nodes.items()
        if not name.startswith("settlement_")
        for c in n["assetChecksOrError"].get("checks", [])
    ]
    assert len(checks) > 300
    not_run = [c for c in checks if c[2] is None]
    assert not not_run, not_run[:10]
    # every blocking check passed; the volume warnings may or may not
    assert {c[2] for c in checks if not c[1].endswith("__volume")} == {"SUCCEEDED"}


def test_what_cardlake_run_writes_is_the_owners_alone(cli_lake):
    """Raw card-key hashes, buyers' contacts, settlement files: no other account reads them."""
    lake = cli_lake[0]
    assert lake.stat().st_mode & 0o777 == 0o700
    for path in lake.rglob("*"):
        if not path.is_symlink():
            assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


CLI = (sys.executable, "-m", "pipelines.cli")
#: 900 orders × 900, sorted whole: far past a 64 MB reader with 32 MB of spill
GREEDY = "select * from fct_orders a, fct_orders b order by a.order_no || b.order_no desc"


def test_concurrent_writers_take_turns_and_a_greedy_reader_fails_alone(
    cli_lake, shop, days, tmp_path
):
    """Two `cardlake run` and a Dagster run at once, and an analyst's query far past the reader
    bounds: the writers take turns on the lake (each waits for the writer lock), the query fails
    on its own, and the lake ends as one serial run leaves it."""
    lake = tmp_path / "lake"
    shutil.copytree(cli_lake[0], lake, symlinks=True)  # a warehouse to query from the start
    (tmp_path / "dagster").mkdir()
    env = {**os.environ, "COLUMNS": "200", "DAGSTER_HOME": str(tmp_path / "dagster")}
    runs = [
        subprocess.Popen(
            [*CLI, "run", "--all", "--sources", str(shop), "--lake", str(lake)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    greedy = subprocess.run(
        [*CLI, "sql", "--lake", str(lake), GREEDY],
        capture_output=True,
        text=True,
        env={**env, "CARDLAKE_READER_MEMORY": "64MB", "CARDLAKE_READER_TEMP": "32MB"},
        timeout=600,
    )
    _dagster_lake(shop, lake, days[-1:])  # in this process, beside the two runs
    outputs = [run.communicate(timeout=1200)[0] for run in runs]
    assert greedy.returncode == 1, greedy.stdout + greedy.stderr
    assert "Out of Memory" in greedy.stderr and "CARDLAKE_READER_MEMORY" in greedy.stderr
    for run, out in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out
    assert _marts(lake) == _marts(cli_lake[0])
