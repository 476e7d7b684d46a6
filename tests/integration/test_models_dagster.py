"""The models through Dagster, as the daily job runs them: dagster-dbt materialises every model of
a business-day partition, reports each dbt test as an asset check, and publishing follows."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from pipelines.defs.models.assets import cardlake_models, warehouse
from pipelines.lib.publish import open_warehouse
from pipelines.resources import default_resources

pytestmark = pytest.mark.integration


def test_a_partition_materialises_models_checks_and_the_warehouse(modelled_shop, tmp_path) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(
        modelled_shop.lake,
        lake,
        ignore=shutil.ignore_patterns("_build", "_serving", "marts", "warehouse.duckdb"),
    )
    day = modelled_shop.cfg.start
    result = dg.materialize(
        [cardlake_models, warehouse],
        partition_key=day.isoformat(),
        resources=default_resources(modelled_shop.sources, lake),
        raise_on_error=False,
    )
    assert result.success
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {
        "stg_shop__orders",
        "fct_orders",
        "kpi_sales_daily",
        "dim_users",
        "warehouse",
    } <= materialised
    checks = result.get_asset_check_evaluations()
    assert len(checks) > 100 and all(c.passed for c in checks)
    assert any(c.asset_key == dg.AssetKey("fct_orders") for c in checks)
    with open_warehouse(lake) as con:
        (run_id,) = con.execute("select distinct run_id from _publication").fetchone()
        rows = con.execute("select count(*) from kpi_sales_daily").fetchone()[0]
    assert run_id == result.run_id and rows > 0
