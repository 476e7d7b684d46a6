"""Tickets (工单) and messages for the incidents in the published ``alerts`` mart.

The rules themselves are dbt models (``dbt_project/models/marts/alerts``), so each is an asset
with its lineage like every other mart; this asset, the cycle's tickets stage, follows the
publication they reach readers in.
"""

import dagster as dg

from pipelines import cycle
from pipelines.defs.ingest.partitions import daily
from pipelines.defs.models.assets import warehouse
from pipelines.defs.record import tickets_metadata
from pipelines.resources import (
    AlertsResource,
    LakeResource,
    ShopDatabasesResource,
    SourcesResource,
    as_cycle,
)


@dg.asset(
    key="alert_tickets",
    deps=[warehouse],
    partitions_def=daily,
    group_name="alerts",
    kinds={"duckdb", "parquet"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def alert_tickets(
    context: dg.AssetExecutionContext,
    sources: SourcesResource,
    shop_dbs: ShopDatabasesResource,
    lake: LakeResource,
    alerting: AlertsResource,
) -> dg.MaterializeResult:
    """Opens a ticket for every new incident in the published alerts, resolves those whose
    incident ended, and sends each role's group robots the messages still owed (one per incident,
    one follow-up when it resolves). The history is an append-only event log under
    lake/tickets/; lake/ops.duckdb serves it to the dashboard. A message that cannot be delivered
    fails nothing: it is retried at the next run, and the ticket is there regardless."""
    _, skipped = alerting.routes()
    for note in skipped:
        context.log.info(f"alert route skipped: {note}")
    result = cycle.tickets(as_cycle(sources, shop_dbs, lake, alerting))
    for note in result.notes:
        context.log.warning(note)
    return dg.MaterializeResult(metadata=tickets_metadata(result))
