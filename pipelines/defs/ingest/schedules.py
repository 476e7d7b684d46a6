"""The daily run: at 00:30 Asia/Shanghai, land the business day that just ended, rebuild the
models for it and publish the marts."""

import dagster as dg

from pipelines.lib.contracts import load_contracts

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(
        *[c.asset_name for c in load_contracts().values()]
    ).downstream()
    # reports follow on their own (the settlement sensor), per statement day and per month
    - dg.AssetSelection.groups("reports"),
    # a run that fails (a database briefly away, say) is retried from the failed step
    tags={
        "dagster/max_retries": "2",
        "dagster/retry_strategy": "FROM_FAILURE",
        # one run at a time builds the models (dagster_home/dagster.yaml's run queue)
        "cardlake/dbt": "build",
    },
    description=(
        "Land one business day of every source in the lake, rebuild the models and publish."
    ),
)

ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job,
    hour_of_day=0,
    minute_of_hour=30,
    name="ingest_schedule",
    description="00:30 Asia/Shanghai: land the previous business day.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
