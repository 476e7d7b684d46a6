"""The checks on a landed partition: exact row accounting (blocking), the contract's Great
Expectations suite (blocking) and the source's volume (a warning). Plain Python: the cycle runs
them after landing, and the Dagster raw assets report them as their asset checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl

from pipelines.lib.contracts import Contract
from pipelines.lib.gx_suites import run_suite
from pipelines.lib.lake import Lake


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """A check every landed partition of a contract's dataset gets."""

    suffix: str
    blocking: bool
    description: str

    def name(self, contract: Contract) -> str:
        return f"{contract.asset_name}__{self.suffix}"


ROW_ACCOUNTING = CheckSpec(
    "row_accounting",
    True,
    "rows read = landed + quarantined + skipped duplicates, exactly; the published files are the "
    "ones counted; the contract key is unique among landed rows",
)
CONTRACT_GX = CheckSpec(
    "contract_gx",
    True,
    "Great Expectations suite generated from the contract, run on the landed partition",
)
VOLUME = CheckSpec("volume", False, "warn when a source that normally sends rows sent none")
SPECS = (ROW_ACCOUNTING, CONTRACT_GX, VOLUME)


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """One check of one partition: passed or not, and what it measured."""

    spec: CheckSpec
    contract: Contract
    day: dt.date
    passed: bool
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name(self.contract)

    @property
    def blocking(self) -> bool:
        return self.spec.blocking

    def describe(self) -> str:
        """``<dataset> <day>: <check> failed: k=v, ...`` (scalars only)."""
        shown = ", ".join(
            f"{k}={v}" for k, v in self.metadata.items() if not isinstance(v, dict | list)
        )
        return f"{self.contract.dataset} {self.day}: {self.name} failed: {shown}"


def row_accounting(contract: Contract, lake: Lake, day: dt.date) -> CheckOutcome:
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
    return CheckOutcome(
        ROW_ACCOUNTING,
        contract,
        day,
        bool(ok),
        {
            "read": read,
            "landed": landed,
            "quarantined": quarantined,
            "skipped": skipped,
            "duplicate_keys": duplicate_keys,
            "skipped_detail": state.get("skipped_detail", {}),
        },
    )


def contract_gx(contract: Contract, lake: Lake, day: dt.date) -> CheckOutcome:
    frame = lake.read_partition("raw", contract.dataset, day)
    if frame is None:
        frame = pl.DataFrame(schema=contract.landed_schema)
    outcome = run_suite(contract, frame)
    return CheckOutcome(
        CONTRACT_GX,
        contract,
        day,
        outcome.success,
        {"expectations": outcome.evaluated, "failed": outcome.failures, "rows": frame.height},
    )


def volume(contract: Contract, lake: Lake, day: dt.date) -> CheckOutcome:
    state = lake.read_state(contract.dataset, day) or {}
    passed = state.get("read", 0) > 0 or not contract.source.get("expect_daily_rows")
    return CheckOutcome(VOLUME, contract, day, passed, {"read": state.get("read", 0)})


def check_partition(contract: Contract, lake: Lake, day: dt.date) -> list[CheckOutcome]:
    """Every check of a landed partition, in order."""
    return [check(contract, lake, day) for check in (row_accounting, contract_gx, volume)]
