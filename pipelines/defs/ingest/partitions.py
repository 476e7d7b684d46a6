"""Business days in Asia/Shanghai: the partition of every raw dataset."""

import dagster as dg

BUSINESS_TZ = "Asia/Shanghai"
FIRST_DAY = "2024-01-01"

daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=BUSINESS_TZ, end_offset=1)
