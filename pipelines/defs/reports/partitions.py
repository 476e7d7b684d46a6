"""Settlement periods: the statement day (the business day) and the calendar month."""

import dagster as dg

from pipelines.defs.ingest.partitions import daily
from pipelines.lib.calendar import BUSINESS_TZ, FIRST_DAY

statement_days = daily
months = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_DAY.isoformat(), timezone=BUSINESS_TZ, end_offset=1
)
