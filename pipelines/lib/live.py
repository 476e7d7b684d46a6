"""The live path: the shop's current business day, landed, modelled and published again
whenever one of its database tables changed.

Each pass replaces the day's partitions whole, exactly as the nightly run does, so the live day
converges on what the nightly run of the same sources produces; then the models those tables
feed are rebuilt for the day (with their tests) and the day is published. Between passes a cheap
probe per table (the newest version in the day's window and the rows in it, one indexed range
scan) is compared with what the last landing recorded, so an idle shop costs nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.lib.contracts import Contract, load_contracts
from pipelines.lib.dbt import DbtError, run_dbt
from pipelines.lib.extract import CST, day_window, window_versions
from pipelines.lib.ingest import IngestResult, ingest
from pipelines.lib.lake import Lake
from pipelines.lib.publish import Publication, publish


def business_today(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(CST).date()


def live_contracts() -> list[Contract]:
    """The database tables a live run lands: all of them (the full-scan ones are small and
    change with the orders, e.g. a new substation user)."""
    return [c for c in load_contracts().values() if c.source["kind"] == "database"]


def probe(urls: dict[str, str], day: dt.date) -> dict[str, tuple[str | None, int]]:
    """Per versioned table: (newest version in the day's window, rows in it)."""
    out = {}
    for contract in live_contracts():
        src = contract.source
        if not src.get("watermark") or src.get("full_scan"):
            continue
        window = day_window(day, int(src.get("overlap_minutes", 10)))
        out[contract.dataset] = window_versions(contract, urls[src["database"]], window)
    return out


def changed_tables(lake: Lake, urls: dict[str, str], day: dt.date) -> dict[str, tuple]:
    """The versioned tables whose window for ``day`` differs from what was last landed, with
    what the probe saw (those with rows when the day was never landed)."""
    out = {}
    for dataset, (newest, rows) in probe(urls, day).items():
        state = lake.read_state(dataset, day)
        if state is None and rows == 0:
            continue  # a day the shop has not sold on yet (or a lake of past data): nothing to do
        state = state or {}
        landed = state.get("watermark")
        landed = None if landed is None else str(landed)
        if (newest, rows) != (landed, state.get("window_rows", -1)):
            out[dataset] = (newest, rows)
    return out


#: the models today's shop tables feed, and those over the lake's own accounts of what landed
#: (ingest state, quarantine), with their tests; dbt's unit tests test the SQL on fixed inputs,
#: not the day's data (they run in the nightly build and in CI)
LIVE_SELECT = ["--select", "source:shop+", "source:substation+", "source:lake+"]
LIVE_EXCLUDE = ["--exclude", "resource_type:unit_test"]


@dataclasses.dataclass
class LiveCycle:
    """What one pass of the live loop did."""

    day: dt.date
    changed: list[str]
    landed: dict[str, int]
    quarantined: int
    models: list[str]
    tests: int
    land_s: float
    dbt_s: float
    publish_s: float
    publication: Publication


def land_day(lake: Lake, sources: Path, urls: dict[str, str], day: dt.date) -> list[IngestResult]:
    """Land ``day`` of every shop database table again (each partition replaced whole)."""
    return [ingest(contract, day, lake, sources, urls) for contract in live_contracts()]


class LiveCycleFailed(RuntimeError):
    """A live pass landed data that failed a check, or a model or test failed: nothing of it
    was published (readers keep the previous publication)."""


def live_cycle(
    lake_root: Path,
    sources: Path,
    urls: dict[str, str],
    day: dt.date,
    changed: list[str],
    check: Callable[[Contract, Lake, dt.date], list[str]],
) -> LiveCycle:
    """One pass of the live loop: land today's shop tables, check them with ``check`` (the
    blocking checks the raw assets run, returning failures), rebuild what they feed for today
    (models and their tests), publish the day."""
    lake = Lake(lake_root)
    started = time.perf_counter()
    results = land_day(lake, sources, urls, day)
    failures = [f for contract in live_contracts() for f in check(contract, lake, day)]
    if failures:
        raise LiveCycleFailed("blocking checks failed; nothing published:\n" + "\n".join(failures))
    land_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        nodes = run_dbt(lake_root, "build", [*LIVE_SELECT, *LIVE_EXCLUDE], days=[day.isoformat()])
    except DbtError as exc:
        raise LiveCycleFailed(str(exc)) from exc
    dbt_s = time.perf_counter() - started
    started = time.perf_counter()
    publication = publish(lake_root, changed_days=[day])
    return LiveCycle(
        day=day,
        changed=sorted(changed),
        landed={r.dataset: r.landed for r in results},
        quarantined=sum(r.quarantined for r in results),
        models=[n["node"].split(".")[-1] for n in nodes if n["node"].startswith("model.")],
        tests=sum(n["node"].startswith("test.") for n in nodes),
        land_s=land_s,
        dbt_s=dbt_s,
        publish_s=time.perf_counter() - started,
        publication=publication,
    )
