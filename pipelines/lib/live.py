"""The live path: which of today's database tables changed since they were last landed.

Live runs land the current business day of the shop databases again and again. Each run
replaces the day's partitions whole, exactly as the nightly run does, so the live day converges
to what the nightly run of the same sources produces; then the day's models are rebuilt and
published. Between runs a cheap probe per table (the newest version in the day's window and the
rows in it, one indexed range scan) is compared with what the last landing recorded, so an idle
shop costs no runs.
"""

from __future__ import annotations

import datetime as dt

from pipelines.lib.contracts import Contract, load_contracts
from pipelines.lib.extract import CST, day_window, window_versions
from pipelines.lib.lake import Lake


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
    what the probe saw (all of them when the day was never landed)."""
    out = {}
    for dataset, (newest, rows) in probe(urls, day).items():
        state = lake.read_state(dataset, day) or {}
        landed = state.get("watermark")
        landed = None if landed is None else str(landed)
        if (newest, rows) != (landed, state.get("window_rows", -1)):
            out[dataset] = (newest, rows)
    return out
