"""Dagster definitions, one package per concern: ingest, models (dbt) and publishing, reports,
alerts (tickets and messages), live (the shop's day as it happens); ``daily`` is the job and
schedule of the whole cycle. Every asset runs one stage of ``pipelines.cycle``; ``STAGE_ASSETS``
says which, and a unit test checks that the assets depend on each other in the cycle's order."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.alerts.assets import alert_tickets
from pipelines.defs.daily import daily_cycle_job, daily_cycle_schedule
from pipelines.defs.ingest.assets import raw_assets
from pipelines.defs.ingest.sensors import new_files_sensor
from pipelines.defs.live.sensors import live_job, live_sensor
from pipelines.defs.models.assets import cardlake_models, warehouse
from pipelines.defs.reports.assets import (
    settlement_channel_reports,
    settlement_supplier_statements,
)
from pipelines.defs.reports.schedules import (
    settlement_daily_job,
    settlement_monthly_job,
    settlement_monthly_schedule,
    settlement_schedule,
)
from pipelines.defs.reports.sensors import settlement_reports_sensor
from pipelines.resources import default_resources

#: the assets that run each stage of the cycle (``pipelines.cycle.STAGES``)
STAGE_ASSETS: dict[str, list[dg.AssetsDefinition]] = {
    "land": raw_assets(),
    "models": [cardlake_models],
    "publish": [warehouse],
    "reports": [settlement_channel_reports, settlement_supplier_statements],
    "tickets": [alert_tickets],
}


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[a for assets in STAGE_ASSETS.values() for a in assets],
        jobs=[daily_cycle_job, live_job, settlement_daily_job, settlement_monthly_job],
        schedules=[daily_cycle_schedule, settlement_schedule, settlement_monthly_schedule],
        sensors=[new_files_sensor, live_sensor, settlement_reports_sensor],
        resources=default_resources(),
    )
