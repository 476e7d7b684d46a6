"""Checks on a landed partition: exact row accounting (blocking), the contract's GX suite
(blocking) and the source's volume (warning)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl

from pipelines.lib.contracts import Contract
from pipelines.lib.gx_suites import run_suite
from pipelines.lib.lake import Lake


def accounting_check_name(contract: Contract) -> str:
    return f"{contract.asset_name}__row_accounting"


def gx_check_name(contract: Contract) -> str:
    return f"{contract.asset_name}__contract_gx"


def volume_check_name(contract: Contract) -> str:
    return f"{contract.asset_name}__volume"


def check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            accounting_check_name(contract),
            asset=contract.asset_name,
            blocking=True,
            description="rows read = landed + quarantined + skipped duplicates, exactly; the "
            "published files are the ones counted; the contract key is unique among landed rows",
        ),
        dg.AssetCheckSpec(
            gx_check_name(contract),
            asset=contract.asset_name,
            blocking=True,
            description="Great Expectations suite generated from the contract, run "
            "on the landed partition",
        ),
        dg.AssetCheckSpec(
            volume_check_name(contract),
            asset=contract.asset_name,
            blocking=False,
            description="warn when a source that normally sends rows sent none",
        ),
    ]


def row_accounting(contract: Contract, lake: Lake, day: dt.date) -> dg.AssetCheckResult:
    state = lake.read_state(contract.dataset, day) or {}
    key = [contract.column(k).landed_name for k in contract.key if k in contract.column_names]
    if contract.source["kind"] != "database":
        key = ["_account", *key] if "account" in contract.key else key
    raw = lake.read_partition("raw", contract.dataset, day, columns=[*key, "_row_hash"])
    quarantine = lake.read_partition("quarantine", contract.dataset, day, columns=["_rule"])
    landed = 0 if raw is None else raw.height
    quarantined = 0 if quarantine is None else quarantine.height
    read, skipped = state.get("read", -1), state.get("skipped", -1)
    duplicate_keys = 0 if raw is None or not key else raw.height - raw.select(key).n_unique()
    ok = (
        duplicate_keys == 0
        and lake.partition_is_whole(contract.dataset, day)
        and landed == state.get("landed")
        and quarantined == state.get("quarantined")
        and read == landed + quarantined + skipped
    )
    return dg.AssetCheckResult(
        check_name=accounting_check_name(contract),
        asset_key=contract.asset_name,
        passed=bool(ok),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "read": read,
            "landed": landed,
            "quarantined": quarantined,
            "skipped": skipped,
            "skipped_detail": dg.MetadataValue.json(state.get("skipped_detail", {})),
        },
    )


def contract_gx(contract: Contract, lake: Lake, day: dt.date) -> dg.AssetCheckResult:
    frame = lake.read_partition("raw", contract.dataset, day)
    if frame is None:
        frame = pl.DataFrame(schema=contract.landed_schema)
    outcome = run_suite(contract, frame)
    return dg.AssetCheckResult(
        check_name=gx_check_name(contract),
        asset_key=contract.asset_name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "expectations": outcome.evaluated,
            "failed": dg.MetadataValue.json(outcome.failures),
            "rows": frame.height,
        },
    )


def volume(contract: Contract, lake: Lake, day: dt.date) -> dg.AssetCheckResult:
    state = lake.read_state(contract.dataset, day) or {}
    passed = state.get("read", 0) > 0 or not contract.source.get("expect_daily_rows")
    return dg.AssetCheckResult(
        check_name=volume_check_name(contract),
        asset_key=contract.asset_name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"read": state.get("read", 0)},
    )
