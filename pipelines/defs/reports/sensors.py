"""Reports follow the data: when a publication completes a statement day (the last account's
statement has landed) or closes a month, or changes the marts a published report was built from
(late refunds, a corrected statement), the sensor asks for that report's partition. A run then
publishes a new version only if the report's content changed."""

import hashlib

import dagster as dg

from pipelines.defs.reports.schedules import settlement_daily_job, settlement_monthly_job
from pipelines.lib.publish import WarehouseMissing, open_warehouse
from pipelines.lib.settlement import due_reports, stale_reports
from pipelines.lib.settlement_content import source_digests
from pipelines.resources import LakeResource


@dg.sensor(
    jobs=[settlement_daily_job, settlement_monthly_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Produces the settlement reports a publication made due or changed.",
)
def settlement_reports_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    try:
        con = open_warehouse(lake.lake.root)
    except WarehouseMissing:
        yield dg.SkipReason("nothing published yet")
        return
    try:
        wanted: dict[tuple[str, str], list[str]] = {}
        for key in stale_reports(lake.lake.root, con, due_reports(con)):
            sources = source_digests(con, key)
            partition = key.period if key.kind == "channel" else f"{key.period}-01"
            wanted.setdefault((key.kind, partition), []).append(repr(sorted(sources.items())))
    finally:
        con.close()
    if not wanted:
        yield dg.SkipReason("every due report is current")
        return
    for (kind, partition), fingerprints in sorted(wanted.items()):
        job = settlement_daily_job if kind == "channel" else settlement_monthly_job
        yield dg.RunRequest(
            run_key=f"{kind}:{partition}:"
            + hashlib.sha1("\n".join(fingerprints).encode()).hexdigest()[:12],
            partition_key=partition,
            job_name=job.name,
            tags={"cardlake/trigger": "settlement"},
        )
