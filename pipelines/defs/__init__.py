"""Dagster definitions, one package per concern: ingest, models (dbt) and publishing; reports later."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.ingest.assets import raw_assets
from pipelines.defs.ingest.schedules import ingest_job, ingest_schedule
from pipelines.defs.ingest.sensors import new_files_sensor
from pipelines.defs.models.assets import cardlake_models, warehouse
from pipelines.resources import default_resources


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_assets(), cardlake_models, warehouse],
        jobs=[ingest_job],
        schedules=[ingest_schedule],
        sensors=[new_files_sensor],
        resources=default_resources(),
    )
