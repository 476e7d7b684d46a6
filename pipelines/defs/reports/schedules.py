"""Settlement on a timetable, as a backstop to the sensor: the statement day before yesterday's
channel reports at 10:30 (statements arrive in the morning, a day's late payments the next), and
the closed month's supplier statements on the 2nd at 11:00 (Asia/Shanghai)."""

import dagster as dg

from pipelines.defs.reports.assets import (
    settlement_channel_reports,
    settlement_supplier_statements,
)
from pipelines.defs.timetable import days_before, previous_month, schedule_for

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

settlement_schedule = schedule_for(
    settlement_daily_job,
    "30 10 * * *",
    days_before(2),
    name="settlement_schedule",
    description="10:30 (business time): the channel reports of the statement day before "
    "yesterday (its statements arrived yesterday morning, its late payments this morning).",
)
settlement_monthly_schedule = schedule_for(
    settlement_monthly_job,
    "0 11 2 * *",
    previous_month,
    name="settlement_monthly_schedule",
    description="The 2nd, 11:00 (business time): the month that just closed, per supplier.",
)
