"""Business days (the business calendar's zone): the partition of every raw dataset."""

import dagster as dg

from pipelines.lib.calendar import BUSINESS_TZ, FIRST_DAY

daily = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY.isoformat(), timezone=BUSINESS_TZ, end_offset=1
)
