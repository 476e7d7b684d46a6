"""Settlement on a timetable, as a backstop to the sensor: the statement day before yesterday's
channel reports at 10:30 (statements arrive in the morning, a day's late payments the next), and
the closed month's supplier statements on the 2nd at 11:00 (Asia/Shanghai)."""

import dagster as dg

from pipelines.defs.reports.assets import (
    settlement_channel_reports,
    settlement_supplier_statements,
)

settlement_daily_job = dg.define_asset_job(
    "settlement_daily_job",
    selection=[settlement_channel_reports],
    description="Channel statement checks and settlement reports for a statement day.",
)
settlement_monthly_job = dg.define_asset_job(
    "settlement_monthly_job",
    selection=[settlement_supplier_statements],
    description="Supplier payable statements for a calendar month.",
)

settlement_schedule = dg.build_schedule_from_partitioned_job(
    settlement_daily_job,
    hour_of_day=10,
    minute_of_hour=30,
    name="settlement_schedule",
    description="10:30 Asia/Shanghai: the previous statement day's channel reports.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
settlement_monthly_schedule = dg.build_schedule_from_partitioned_job(
    settlement_monthly_job,
    day_of_month=2,
    hour_of_day=11,
    minute_of_hour=0,
    name="settlement_monthly_schedule",
    description="The 2nd, 11:00 Asia/Shanghai: the month that just closed, per supplier.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
