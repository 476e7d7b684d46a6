"""Dagster definitions, one package per concern: ingest, models (dbt) and publishing, reports,
alerts (tickets and messages), live (the shop's day as it happens)."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.alerts.assets import alert_tickets
from pipelines.defs.ingest.assets import raw_assets
from pipelines.defs.ingest.schedules import ingest_job, ingest_schedule
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


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *raw_assets(),
            cardlake_models,
            warehouse,
            settlement_channel_reports,
            settlement_supplier_statements,
            alert_tickets,
        ],
        jobs=[ingest_job, live_job, settlement_daily_job, settlement_monthly_job],
        schedules=[ingest_schedule, settlement_schedule, settlement_monthly_schedule],
        sensors=[new_files_sensor, live_sensor, settlement_reports_sensor],
        resources=default_resources(),
    )
