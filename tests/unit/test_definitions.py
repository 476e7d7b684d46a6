"""The Dagster code location loads, and its asset graph is what we think it is."""

from __future__ import annotations

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


def test_asset_graph_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED_RAW
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert (
        groups["raw_shop__orders"] == "shop" and groups["raw_alipay__statement_lines"] == "alipay"
    )
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and node.description and node.kinds
        assert node.partitions_def.timezone == "Asia/Shanghai"
        assert node.freshness_policy is not None
        checks = {c.name for c in node.check_keys}
        name = key.to_user_string()
        assert checks == {f"{name}__row_accounting", f"{name}__contract_gx", f"{name}__volume"}


def test_schedule_sensor_and_job() -> None:
    schedule = defs.get_schedule_def("ingest_schedule")
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert defs.get_sensor_def("new_files_sensor")
    job = defs.resolve_job_def("ingest_job")
    assert job.tags["dagster/max_retries"] == "2"


def test_every_contract_is_an_asset_and_names_agree() -> None:
    contracts = load_contracts()
    assert {c.asset_name for c in contracts.values()} == EXPECTED_RAW
    for name, contract in contracts.items():
        assert contract.path.name == f"{name}.v{contract.version}.yml"
        landed = [c.landed_name for c in contract.columns]
        assert len(set(landed)) == len(landed)
        money = [c for c in contract.columns if c.type == "yuan"]
        assert all(c.landed_name.endswith("_fen") for c in money)
