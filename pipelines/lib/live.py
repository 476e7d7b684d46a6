"""What the live session watches: whether today's shop tables changed since they were landed.

A live pass (``pipelines.cycle.live_scope``) lands today's partitions of the shop tables again,
each replaced whole exactly as the nightly run does, so the live day converges on what the
nightly run of the same sources produces. Between passes a cheap probe per table (the newest
version in the day's window and the rows in it, one indexed range scan) is compared with what the
last landing recorded, so an idle shop costs nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pipelines.lib.contracts import Contract, load_contracts
from pipelines.lib.extract import day_window, window_versions
from pipelines.lib.lake import Lake


def live_contracts() -> tuple[Contract, ...]:
    """The tables a live pass lands: every shop database table (the full-scan ones are small and
    change with the orders, e.g. a new substation user)."""
    return tuple(c for c in load_contracts().values() if c.source["kind"] == "database")


def probe(urls: Mapping[str, str], day: dt.date) -> dict[str, tuple[str | None, int]]:
    """Per versioned table: (newest version in the day's window, rows in it)."""
    out = {}
    for contract in live_contracts():
        src = contract.source
        if not src.get("watermark") or src.get("full_scan"):
            continue
        window = day_window(day, int(src.get("overlap_minutes", 10)))
        out[contract.dataset] = window_versions(contract, urls[src["database"]], window)
    return out


def changed_tables(lake: Lake, urls: Mapping[str, str], day: dt.date) -> dict[str, tuple]:
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
