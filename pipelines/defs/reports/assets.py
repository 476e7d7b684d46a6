"""Settlement reports as Dagster assets: a channel's statement check and settlement per statement
day, and each supplier's payable statement per calendar month, written to lake/reports/settlement
as CSV, XLSX and PDF once the day's statements (or the month) are complete, and only when they tie
out (pipelines.lib.settlement)."""

import datetime as dt

import dagster as dg

from pipelines import cycle
from pipelines.defs.models.assets import warehouse
from pipelines.defs.record import report_metadata
from pipelines.defs.reports.partitions import months, statement_days
from pipelines.lib.calendar import day_range
from pipelines.lib.publish import open_warehouse
from pipelines.lib.settlement import Outcome, ReportKey, due_reports
from pipelines.resources import LakeResource, lake_cycle


def _result(outcomes: list[Outcome], waiting: list[str]) -> dg.MaterializeResult:
    held = [o for o in outcomes if o.status == "held"]
    if held:
        raise dg.Failure(
            description="settlement reports that do not tie out are held, not published",
            metadata={str(o.key): dg.MetadataValue.json(o.problems) for o in held},
        )
    return dg.MaterializeResult(metadata=report_metadata(outcomes, waiting))


def _due(lake, kind: str, periods: set[str]) -> list[ReportKey]:
    con = open_warehouse(lake)
    try:
        return [k for k in due_reports(con) if k.kind == kind and k.period in periods]
    finally:
        con.close()


@dg.asset(
    key="settlement_channel_reports",
    deps=[warehouse],
    partitions_def=statement_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="reports",
    kinds={"csv", "xlsx", "pdf"},
    owners=["team:finance"],
)
def settlement_channel_reports(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    """Each channel's statement check and settlement for the statement day (lake/reports/
    settlement/channel/<channel>/<day>/): every statement line and shop payment or refund with its
    reconciliation status, gross, refunds, fees (stated and expected) and net per account. Due once
    every account of the channel has its statement for the day; a new version only when the
    content changed (late data), each tied out against the marts and the statements' footers."""
    first = dt.date.fromisoformat(context.partition_key_range.start)
    last = dt.date.fromisoformat(context.partition_key_range.end)
    periods = {d.isoformat() for d in day_range(first, last)}
    keys = _due(lake.lake, "channel", periods)
    waiting = sorted(periods - {k.period for k in keys})
    return _result(cycle.reports(lake_cycle(lake), keys=keys), waiting)


@dg.asset(
    key="settlement_supplier_statements",
    deps=[warehouse],
    partitions_def=months,
    group_name="reports",
    kinds={"csv", "xlsx", "pdf"},
    owners=["team:finance"],
)
def settlement_supplier_statements(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    """Each supplier's payable statement for the calendar month (lake/reports/settlement/supplier/
    <supplier>/<YYYY-MM>/): keys delivered and charged back per day, batch and SKU, and the amount
    payable. Due once the month has closed (a later day has data); late refunds that change it
    publish a new version."""
    month = context.partition_key[:7]
    keys = _due(lake.lake, "supplier", {month})
    return _result(cycle.reports(lake_cycle(lake), keys=keys), [] if keys else [month])
