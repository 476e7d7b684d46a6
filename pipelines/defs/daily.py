"""The daily cycle as a Dagster job: at 00:30 (business time) land the business day that just
ended, rebuild the models for it, publish the marts and sync the tickets; each asset runs one
stage of ``pipelines.cycle``. The settlement reports follow on their own (the settlement sensor)."""

import dagster as dg

from pipelines.defs.models.assets import cardlake_models
from pipelines.defs.timetable import days_before, schedule_for
from pipelines.lib.contracts import load_contracts

daily_cycle_job = dg.define_asset_job(
    "daily_cycle_job",
    # every raw table and every model (those over the lake's own accounts of what landed, the
    # ingest state and quarantine, included), and all that follows them
    selection=(
        dg.AssetSelection.assets(*[c.asset_name for c in load_contracts().values()])
        | dg.AssetSelection.assets(cardlake_models)
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
        "The daily cycle for one business day: land every source in the lake, rebuild the "
        "models, publish the marts, sync the tickets."
    ),
)

daily_cycle_schedule = schedule_for(
    daily_cycle_job,
    "30 0 * * *",
    days_before(1),
    name="daily_cycle_schedule",
    description="00:30 (business time, Asia/Shanghai): the daily cycle of the business day that "
    "just ended.",
)
