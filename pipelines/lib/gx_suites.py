"""Great Expectations (GX Core 1.x) suites generated from the data contracts.

The validator already quarantines every row that breaks a rule; the suite re-checks the landed
partition independently, so a bug in either shows up as a failed blocking check that stops the
models. Ephemeral context, pandas datasource (the SQL datasource over duckdb-engine is not usable
here), one batch per landed partition.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import polars as pl

from pipelines.lib.contracts import Contract
from pipelines.lib.protect import landed_pattern

logging.getLogger("great_expectations").setLevel(logging.ERROR)


@dataclasses.dataclass
class SuiteOutcome:
    success: bool
    evaluated: int
    failures: list[dict]


_local = threading.local()


def _context():
    """One ephemeral GX context per thread (cardlake run lands two lanes side by side)."""
    if not hasattr(_local, "context"):
        _local.context = _new_context()
    return _local.context


def _new_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm in run logs
    source = context.data_sources.add_pandas("lake")
    return context, source


def build_suite(contract: Contract):
    import great_expectations as gx
    from great_expectations import expectations as gxe

    suite = gx.ExpectationSuite(name=f"{contract.dataset}.v{contract.version}")
    landed = [c.landed_name for c in contract.columns]
    suite.add_expectation(gxe.ExpectTableColumnsToMatchSet(column_set=landed, exact_match=False))
    for col in contract.columns:
        name = col.landed_name
        if not col.nullable:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if col.allowed is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(col.allowed))
            )
        if col.protect:
            # a card key lands as its keyed hash (the validator judged its plaintext): every
            # value has the hash's form, so no plaintext key reached the partition
            suite.add_expectation(
                gxe.ExpectColumnValuesToMatchRegex(column=name, regex=landed_pattern(col))
            )
        elif col.pattern and col.type == "string":
            suite.add_expectation(
                gxe.ExpectColumnValuesToMatchRegex(column=name, regex=col.pattern)
            )
        scale = 100 if col.type == "yuan" else 1
        if col.min is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(column=name, min_value=col.min * scale)
            )
        if col.min_exclusive is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=col.min_exclusive * scale, strict_min=True
                )
            )
    # key uniqueness is checked with the row accounting (a polars group-by), far cheaper than
    # GX's pandas hashing on million-row partitions
    return suite


def _forget_batches(source) -> None:
    """Drop the batches GX's execution engine keeps of every frame it validated: a context lives
    as long as its thread, so a run landing many days would otherwise hold every partition's
    pandas copy (about 1.3 GB a day at a million orders)."""
    manager = source.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


def run_suite(contract: Contract, frame: pl.DataFrame) -> SuiteOutcome:
    _, source = _context()
    suite = build_suite(contract)
    name = f"{contract.dataset}_{id(frame)}"
    asset = source.add_dataframe_asset(name=name)
    try:
        batch_def = asset.add_batch_definition_whole_dataframe("partition")
        columns = [c.landed_name for c in contract.columns]
        pdf = frame.select(columns).to_pandas(use_pyarrow_extension_array=False)
        batch = batch_def.get_batch(batch_parameters={"dataframe": pdf})
        result = batch.validate(suite)
    finally:
        source.delete_asset(name=name)
        _forget_batches(source)
    failures = [
        {
            "expectation": r.expectation_config.type,
            "kwargs": {k: str(v) for k, v in r.expectation_config.kwargs.items()},
            "unexpected": r.result.get("unexpected_count"),
        }
        for r in result.results
        if not r.success
    ]
    return SuiteOutcome(bool(result.success), len(result.results), failures)
