"""The Dagster code location loads, and its asset graph is what we think it is."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.lib.contracts import load_contracts

pytestmark = pytest.mark.unit

EXPECTED_RAW = {
    "raw_shop__orders",
    "raw_shop__goods",
    "raw_shop__goods_group",
    "raw_shop__carmis",
    "raw_shop__pays",
    "raw_shop__coupons",
    "raw_shop__refunds",
    "raw_substation__order",
    "raw_substation__card",
    "raw_substation__commodity",
    "raw_substation__category",
    "raw_substation__user",
    "raw_substation__pay",
    "raw_crm__members",
    "raw_alipay__statement_lines",
    "raw_wechat__bill_lines",
    "raw_supplier__card_batches",
}


def _models() -> dict:
    """dbt's models and seeds as the definitions see them: asset key → asset node."""
    graph = defs.resolve_asset_graph()
    return {
        k.to_user_string(): graph.get(k)
        for k in graph.get_all_asset_keys()
        if graph.get(k).group_name in {"staging", "intermediate", "marts", "rules"}
    }


def test_asset_graph_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys >= EXPECTED_RAW
    lake_sources = {"lake/ingest_state", "lake/quarantined_orders"}
    reports = {"settlement_channel_reports", "settlement_supplier_statements", "alert_tickets"}
    assert {"warehouse", *lake_sources, *reports} <= keys
    assert keys - EXPECTED_RAW - {"warehouse", *lake_sources, *reports} == set(_models())
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert (
        groups["raw_shop__orders"] == "shop" and groups["raw_alipay__statement_lines"] == "alipay"
    )
    for key in graph.get_all_asset_keys():
        if key.to_user_string() not in EXPECTED_RAW:
            continue
        node = graph.get(key)
        assert node.owners and node.description and node.kinds
        assert node.partitions_def.timezone == "Asia/Shanghai"
        assert node.freshness_policy is not None
        checks = {c.name for c in node.check_keys}
        name = key.to_user_string()
        assert checks == {f"{name}__row_accounting", f"{name}__contract_gx", f"{name}__volume"}


def test_schedule_sensor_and_job() -> None:
    schedule = defs.get_schedule_def("daily_cycle_schedule")
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert defs.get_sensor_def("new_files_sensor")
    job = defs.resolve_job_def("daily_cycle_job")
    assert job.tags["dagster/max_retries"] == "2"


def test_settlement_reports_follow_the_warehouse() -> None:
    graph = defs.resolve_asset_graph()
    for name, partitions in (
        ("settlement_channel_reports", dg.DailyPartitionsDefinition),
        ("settlement_supplier_statements", dg.MonthlyPartitionsDefinition),
    ):
        node = graph.get(dg.AssetKey(name))
        assert dg.AssetKey("warehouse") in node.parent_keys
        assert isinstance(node.partitions_def, partitions)
        assert node.partitions_def.timezone == "Asia/Shanghai"
        assert node.group_name == "reports" and node.description
    assert defs.get_sensor_def("settlement_reports_sensor")
    daily = defs.get_schedule_def("settlement_schedule")
    monthly = defs.get_schedule_def("settlement_monthly_schedule")
    assert daily.cron_schedule == "30 10 * * *" and monthly.cron_schedule == "0 11 2 * *"
    assert daily.execution_timezone == monthly.execution_timezone == "Asia/Shanghai"
    # the daily ingest leaves the reports to their sensor (a monthly partition cannot join it)
    ingest = defs.resolve_job_def("daily_cycle_job").asset_layer.selected_asset_keys
    assert not {k.to_user_string() for k in ingest} & {
        "settlement_channel_reports",
        "settlement_supplier_statements",
    }


def test_every_contract_is_an_asset_and_names_agree() -> None:
    contracts = load_contracts()
    assert {c.asset_name for c in contracts.values()} == EXPECTED_RAW
    for name, contract in contracts.items():
        assert contract.path.name == f"{name}.v{contract.version}.yml"
        landed = [c.landed_name for c in contract.columns]
        assert len(set(landed)) == len(landed)
        money = [c for c in contract.columns if c.type == "yuan"]
        assert all(c.landed_name.endswith("_fen") for c in money)


MARTS = {
    "dim_users",
    "dim_products",
    "dim_suppliers",
    "dim_channels",
    "fct_orders",
    "fct_payments",
    "fct_refunds",
    "fct_key_movements",
    "kpi_sales_daily",
    "kpi_refunds_daily",
    "kpi_repurchase_daily",
    "kpi_inventory_daily",
    "kpi_fulfilment_daily",
    "anomaly_orders",
    "dq_daily",
    "rpt_channel_reconciliation",
    "rpt_channel_settlement_daily",
    "rpt_supplier_payable",
    "rpt_supplier_payable_lines",
    "alert_signals_daily",
    "alerts",
}


def test_models_are_assets_downstream_of_raw_with_tests_as_checks() -> None:
    graph = defs.resolve_asset_graph()
    models = _models()
    assert {k for k, n in models.items() if n.group_name == "marts"} >= MARTS
    # every raw asset feeds its staging model: lineage joins up through the dbt sources
    staged_from = {
        p.to_user_string() for k, n in models.items() if k.startswith("stg_") for p in n.parent_keys
    }
    assert staged_from >= EXPECTED_RAW
    for name, node in models.items():
        assert node.partitions_def is not None and node.partitions_def.timezone == "Asia/Shanghai"
        assert node.description, name
    # dbt tests are asset checks of the model they test
    checks = {c.name for c in graph.get(dg.AssetKey("fct_orders")).check_keys}
    assert {"unique_fct_orders_order_no", "not_null_fct_orders_user_key"} <= checks
    # publishing waits for the models
    assert dg.AssetKey("kpi_sales_daily") in graph.get(dg.AssetKey("warehouse")).parent_keys
    job = defs.resolve_job_def("daily_cycle_job")
    assert {"warehouse", "fct_orders", "raw_shop__orders"} <= {
        k.to_user_string() for k in job.asset_layer.selected_asset_keys
    }


def test_live_session_job_and_sensor() -> None:
    job = defs.resolve_job_def("live_job")
    assert [n.name for n in job.graph.nodes] == ["live_session"]
    assert job.tags["cardlake/dbt"] == defs.resolve_job_def("daily_cycle_job").tags["cardlake/dbt"]
    assert job.tags["cardlake/trigger"] == "live"
    sensor = defs.get_sensor_def("live_sensor")
    assert sensor.minimum_interval_seconds == 5
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # the file sensor's runs sync tickets too (a statement can raise a lost-callback alert)
    ingest = defs.resolve_job_def("daily_cycle_job").asset_layer.selected_asset_keys
    assert "alert_tickets" in {k.to_user_string() for k in ingest}


def test_live_passes_rebuild_what_the_shop_tables_feed() -> None:
    """The live pass's dbt selection, resolved by dbt itself on the manifest: every model
    downstream of the shop databases, none fed only by files."""
    import json

    from pipelines.cycle import LIVE_SELECTION
    from pipelines.lib.dbt import MANIFEST_TARGET

    manifest = json.loads((MANIFEST_TARGET / "manifest.json").read_text())
    children = manifest["child_map"]
    roots = [k for k in manifest["sources"] if k.split(".")[2] in ("shop", "substation", "lake")]
    assert LIVE_SELECTION == ("source:shop+", "source:substation+", "source:lake+")
    seen, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    models = {k.split(".")[-1] for k in seen if k.startswith("model.")}
    assert {"fct_orders", "kpi_sales_daily", "alerts", "rpt_supplier_payable"} <= models
    # the lake's accounts of what landed: data-quality signals follow each landing
    assert {"int_source_arrivals_checked", "int_quarantine_rates_checked", "dq_daily"} <= models
    assert not models & {"stg_alipay__statement_lines", "stg_crm__members"}


@pytest.mark.parametrize(
    ("name", "tick", "partition"),
    [
        # 00:30 on 2 October: the business day that just ended
        ("daily_cycle_schedule", (2026, 10, 2, 0, 30), "2026-10-01"),
        # 10:30: the statement day before yesterday (its late payments arrived this morning)
        ("settlement_schedule", (2026, 10, 2, 10, 30), "2026-09-30"),
        # the 2nd of the month: the month that closed
        ("settlement_monthly_schedule", (2026, 10, 2, 11, 0), "2026-09-01"),
    ],
)
def test_schedules_run_the_period_that_ended(name: str, tick: tuple, partition: str) -> None:
    import datetime as dt

    from pipelines.lib.calendar import CST

    at = dt.datetime(*tick, tzinfo=CST)
    schedule = defs.get_schedule_def(name)
    with dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs.get_repository_def()
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == [partition]


def test_the_assets_follow_the_cycles_stage_order() -> None:
    """Each asset of a stage depends only on assets of its own or earlier stages, and each after
    the models on an earlier stage (``pipelines.cycle.STAGES``)."""
    from pipelines.cycle import STAGES
    from pipelines.defs import STAGE_ASSETS

    assert tuple(STAGE_ASSETS) == STAGES
    graph = defs.resolve_asset_graph()
    stage_of = {
        key: i
        for i, name in enumerate(STAGES)
        for assets_def in STAGE_ASSETS[name]
        for key in assets_def.keys
    }
    for key, stage in stage_of.items():
        parents = {stage_of[p] for p in graph.get(key).parent_keys if p in stage_of}
        assert all(p <= stage for p in parents), key  # never on a later stage
        if STAGES[stage] not in ("land", "models"):  # models may read the lake's own state
            assert any(p < stage for p in parents), key  # after an earlier stage


def test_one_business_calendar() -> None:
    """The dbt project's zone is the calendar module's (dbt cannot import Python)."""
    import yaml

    from pipelines.lib.calendar import BUSINESS_TZ
    from pipelines.lib.dbt import DBT_DIR

    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project["vars"]["business_tz"] == BUSINESS_TZ


def test_the_core_imports_no_dagster() -> None:
    """``pipelines.cycle`` and ``pipelines.lib`` are plain Python: Dagster, the CLI and the
    definitions build on them, never the other way round."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "pipelines"
    for path in [root / "cycle.py", *sorted((root / "lib").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        bad = {
            m
            for m in imported
            if m.split(".")[0] in ("dagster", "dagster_dbt")
            or m.startswith(("pipelines.defs", "pipelines.cli", "pipelines.resources"))
            or (path.parent.name == "lib" and m == "pipelines.cycle")
        }
        assert not bad, (path.name, bad)
