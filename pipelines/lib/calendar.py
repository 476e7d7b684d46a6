"""The business calendar: one time zone, one business day, one way to spell a range of days.

A shop's business day runs from 00:00 to 24:00 Beijing time (Asia/Shanghai, UTC+8 all year: China
keeps no summer time), whatever zone the machine runs in. Every partition of the lake, every
Dagster partition and schedule, every window read from a shop database and every time shown to a
person follows it; nothing else in the project spells the zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

#: the business time zone by name (Dagster partitions and schedules, polars, Superset)
BUSINESS_TZ = "Asia/Shanghai"
#: the same zone as a fixed offset: Asia/Shanghai has had no daylight saving since 1991, and a
#: fixed offset needs no tz database lookups in hot paths (windows, per-row conversions)
CST = dt.timezone(dt.timedelta(hours=8))
#: the first business day a Dagster partition exists for
FIRST_DAY = dt.date(2024, 1, 1)


def business_day(moment: dt.datetime) -> dt.date:
    """The business day of an aware moment (naive moments are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CST).date()


def business_today(now: dt.datetime | None = None) -> dt.date:
    """The business day it is now (or at ``now``)."""
    return business_day(now or dt.datetime.now(dt.UTC))


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Beijing time on ``day``, as an aware UTC moment."""
    return dt.datetime.combine(day, dt.time(), tzinfo=CST).astimezone(dt.UTC)


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``, both included (empty when ``last`` is before)."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def span(days: Iterable[dt.date]) -> list[dt.date]:
    """Every day from the first to the last of ``days`` (gaps filled); empty for no days."""
    days = set(days)
    return day_range(min(days), max(days)) if days else []


def as_day(value: dt.date | dt.datetime | str) -> dt.date:
    """A day given as a date, a datetime (its date) or ISO text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
