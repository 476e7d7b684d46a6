"""Dagster definitions, one package per concern (ingest now; models, publish, reports later)."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.ingest.assets import raw_assets
from pipelines.defs.ingest.schedules import ingest_job, ingest_schedule
from pipelines.defs.ingest.sensors import new_files_sensor
from pipelines.resources import default_resources


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=raw_assets(),
        jobs=[ingest_job],
        schedules=[ingest_schedule],
        sensors=[new_files_sensor],
        resources=default_resources(),
    )
