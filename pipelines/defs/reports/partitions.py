"""Settlement periods: the statement day (the business day) and the calendar month."""

import dagster as dg

from pipelines.defs.ingest.partitions import BUSINESS_TZ, FIRST_DAY, daily

statement_days = daily
months = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY, timezone=BUSINESS_TZ, end_offset=1)
