"""Schedules that run a partitioned job for a period that has ended.

Dagster's ``build_schedule_from_partitioned_job`` runs the newest partition at the tick, and the
business-day partitions reach today (``end_offset=1``, so that the live session and a backfill can
name today): at 00:30 it would run the day that has just begun, empty, instead of the one that
ended. These schedules say which period each tick is for, in business time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import dagster as dg

from pipelines.lib.calendar import BUSINESS_TZ, CST


def schedule_for(
    job,
    cron: str,
    partition: Callable[[dt.date], str],
    name: str,
    description: str,
) -> dg.ScheduleDefinition:
    """A schedule of ``job`` on ``cron`` (business time) whose tick on business day D runs the
    partition ``partition(D)``."""

    @dg.schedule(
        job=job,
        cron_schedule=cron,
        execution_timezone=BUSINESS_TZ,
        name=name,
        description=description,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        key = partition(tick.astimezone(CST).date())
        return dg.RunRequest(run_key=f"{name}:{key}", partition_key=key)

    return _schedule


def days_before(n: int) -> Callable[[dt.date], str]:
    """The business day ``n`` days before the tick's."""
    return lambda day: (day - dt.timedelta(days=n)).isoformat()


def previous_month(day: dt.date) -> str:
    """The first day of the calendar month before the tick's (a monthly partition's key)."""
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1).isoformat()
