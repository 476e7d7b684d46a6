"""The shop's day as it happens. When an order, payment, delivery or refund changed in a shop
database, ``live_sensor`` (every 5 s) starts a live session: one Dagster run that loops, and on
every change runs the cycle over today's shop tables (``pipelines.cycle.live_scope``): lands
today's partitions again, rebuilds the models they feed for today (with their tests), publishes
the day and turns new incidents into tickets and messages.

Why one run that loops rather than one run per change: on this 2-core machine Dagster needs
20-30 s to create and launch a run of the ~100 assets involved (the run's plan and snapshot, a
fresh process importing the definitions), as long as the work itself, which would double the
time from a paid order to the dashboard. A session records every stage of every pass in its run
(``pipelines.defs.record.OpRecorder``: raw tables and models with today's partition and their
checks, the serving file, tickets), so the asset catalogue stays true; dbt's tests still gate
each publication.

A session ends when the shop has been quiet for ``idle_stop_s``, when the business day ends, after
``max_s``, or as soon as another run that builds the models (nightly, file sensor) is waiting: the
run queue lets one such run at a time (``cardlake/dbt``), and the sensor starts a new session
after it. Each pass replaces the day whole, so the day converges on what the nightly run of the
same sources produces.
"""

import datetime as dt
import time

import dagster as dg

from pipelines import cycle
from pipelines.defs.record import OpRecorder, sqlite_normal_sync
from pipelines.lib.calendar import business_today
from pipelines.lib.live import changed_tables
from pipelines.lib.writer import LakeBusy, writing
from pipelines.resources import (
    AlertsResource,
    LakeResource,
    ShopDatabasesResource,
    SourcesResource,
    as_cycle,
)

DBT_TAG = {"cardlake/dbt": "build"}
LIVE_TAG = {"cardlake/trigger": "live"}
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
#: after a failed session, wait this long before starting another (a failing test would
#: otherwise start a run every 5 s)
RETRY_AFTER = dt.timedelta(minutes=5)


class LiveSessionConfig(dg.Config):
    idle_stop_s: float = 300.0  # end after this long without a change in the shop
    max_s: float = 3600.0  # a fresh run (and a fresh log) every hour at most
    poll_s: float = 1.0  # probe the shop databases this often while idle


def _waiting_builds(context: dg.OpExecutionContext) -> list[dg.RunRecord]:
    """Other runs that build the models, queued behind this session."""
    return [
        r
        for r in context.instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED], tags=DBT_TAG), limit=5
        )
        if r.dagster_run.run_id != context.run_id
    ]


@dg.op(
    description="Land today's shop tables, rebuild what they feed, publish and sync tickets, "
    "again on every change, until the shop is quiet, the day ends or another build waits."
)
def live_session(
    context: dg.OpExecutionContext,
    config: LiveSessionConfig,
    sources: SourcesResource,
    shop_dbs: ShopDatabasesResource,
    lake: LakeResource,
    alerting: AlertsResource,
) -> dg.Nothing:
    day = business_today()
    urls = shop_dbs.urls()
    run = as_cycle(sources, shop_dbs, lake, alerting)
    started = last_change = time.monotonic()
    passes = 0
    while True:
        if business_today() != day:
            context.log.info(f"business day {day} ended after {passes} passes")
            return
        waiting = _waiting_builds(context)
        if waiting:
            context.log.info(f"ending the session for run {waiting[0].dagster_run.run_id}")
            return
        changed = changed_tables(lake.lake, urls, day)
        now = time.monotonic()
        if not changed:
            if now - last_change >= config.idle_stop_s:
                context.log.info(f"the shop was quiet for {config.idle_stop_s:g} s")
                return
            time.sleep(config.poll_s)
            continue
        if now - started >= config.max_s:
            context.log.info(f"{passes} passes in {config.max_s:g} s; a new session follows")
            return
        last_change = now
        started_pass = time.perf_counter()
        try:
            # the pass waits for another writer no longer than for the shop: a daily run or a
            # backfill ends the session, and the sensor starts a new one once the lake is free
            with (
                writing(
                    run.lake, what=f"the live session (run {context.run_id})", wait=config.poll_s
                ),
                sqlite_normal_sync(),  # the pass's record, without an fsync per event
            ):
                result = cycle.run(run, cycle.live_scope(day), OpRecorder(context))
        except LakeBusy as exc:
            context.log.info(f"ending the session: {exc}")
            return
        if result.failed_landing:
            raise dg.Failure(
                description="blocking checks failed; nothing published:\n"
                + "\n".join(result.failed_landing.failures)
            )
        passes += 1
        took = {r.stage: f"{r.seconds:.1f} s" for r in result.stages}
        context.log.info(
            f"pass {passes}: {', '.join(sorted(changed))} changed; {len(result.models.models)} "
            f"models and {result.models.tests} tests; {took} "
            f"({time.perf_counter() - started_pass:.1f} s in all)"
        )


@dg.job(tags={**DBT_TAG, **LIVE_TAG}, description=live_session.description)
def live_job() -> None:
    live_session()


@dg.sensor(
    job=live_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 s: when today's orders, payments, deliveries or refunds changed in a "
    "shop database since they were last landed and no live session is under way, start one.",
)
def live_sensor(
    context: dg.SensorEvaluationContext, shop_dbs: ShopDatabasesResource, lake: LakeResource
):
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=live_job.name, tags=LIVE_TAG), limit=1
    )
    if records:
        last = records[0]
        if last.dagster_run.status in IN_FLIGHT:
            return dg.SkipReason(f"live session {last.dagster_run.run_id} is under way")
        ended = last.end_time and dt.datetime.fromtimestamp(last.end_time, dt.UTC)
        failed = last.dagster_run.status == dg.DagsterRunStatus.FAILURE
        if failed and ended and dt.datetime.now(dt.UTC) - ended < RETRY_AFTER:
            return dg.SkipReason(
                f"live session {last.dagster_run.run_id} failed at {ended:%H:%M:%S} UTC; "
                f"the next starts {RETRY_AFTER.seconds // 60} minutes after"
            )
    day = business_today()
    changed = changed_tables(lake.lake, shop_dbs.urls(), day)
    if not changed:
        return dg.SkipReason(f"nothing new in the shop databases for {day}")
    seen = ",".join(f"{k}={v[0]}/{v[1]}" for k, v in sorted(changed.items()))
    return dg.RunRequest(run_key=f"live:{day}:{seen}", tags={"cardlake/changed": ",".join(changed)})
