"""The shop's day as it happens: every few seconds, if an order, payment, delivery or refund
changed in a shop database, land today's partitions of the database tables again, rebuild
today's models and publish, then turn new incidents into tickets and messages.

A live run does what the nightly run does for one day, for the day so far: each run replaces
today's partitions whole, the incremental models rebuild only today, and publishing swaps in
the day's partitions of the serving file without blocking readers. So the day converges on what
the nightly run of the same sources produces. One live run at a time; the run queue keeps it
from building the models while another run does (``cardlake/dbt`` concurrency limit).
"""

import dagster as dg

from pipelines.lib.live import business_today, changed_tables, live_contracts
from pipelines.resources import LakeResource, ShopDatabasesResource

live_job = dg.define_asset_job(
    "live_job",
    # what today's shop tables feed, and nothing else: the statement, CRM and supplier models
    # did not change; the seeds (code lists) change with the code; reports follow on their own
    selection=dg.AssetSelection.assets(*[c.asset_name for c in live_contracts()]).downstream()
    - dg.AssetSelection.groups("rules", "reports"),
    # one process, steps in order: a step per subprocess would cost more than the steps
    executor_def=dg.in_process_executor,
    config={"ops": {"cardlake_models": {"config": {"unit_tests": False}}}},
    tags={"cardlake/dbt": "build", "cardlake/trigger": "live"},
    description="Land today's shop database tables again, rebuild the models they feed for "
    "today, publish, and sync tickets: the live path.",
)

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.sensor(
    job=live_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 s: when today's orders, payments, deliveries or refunds changed in a "
    "shop database since they were last landed, and no live run is under way, start one.",
)
def live_sensor(
    context: dg.SensorEvaluationContext, shop_dbs: ShopDatabasesResource, lake: LakeResource
):
    running = context.instance.get_runs(
        filters=dg.RunsFilter(
            job_name=live_job.name, statuses=IN_FLIGHT, tags={"cardlake/trigger": "live"}
        ),
        limit=1,
    )
    if running:
        return dg.SkipReason(f"live run {running[0].run_id} is under way")
    day = business_today()
    changed = changed_tables(lake.lake, shop_dbs.urls(), day)
    if not changed:
        return dg.SkipReason(f"nothing new in the shop databases for {day}")
    seen = ",".join(f"{k}={v[0]}/{v[1]}" for k, v in sorted(changed.items()))
    return dg.RunRequest(
        run_key=f"live:{day}:{seen}",
        partition_key=day.isoformat(),
        tags={"cardlake/changed": ",".join(sorted(changed))},
    )
