"""Days landed out of order: a row version belongs to the earliest day whose read finds it.

A database table is read by a window on its rows' versions, widened by an overlap into the day
before, and a row version already landed in the day before is skipped. Landed in order, a version
in the overlap therefore stays in the earlier day's partition, and the later day counts it as
already landed. Landed out of order (a day backfilled after the day after it), the later day ran
first and, not finding the earlier partition, landed the overlap's versions itself; the earlier
day, landed afterwards, lands them too. The same goes for what every read finds: the rows of a
table read whole (no version column), and the rows quarantined because their version cannot be
placed in time.

So that the lake does not depend on the order the days were landed in, a day claims, from the
partitions of the days after it, the row versions its own read lands: they are removed from those
partitions, whose accounts then count them as already landed, exactly as if the days had been
landed in order (``tests/integration/test_incremental_equality.py`` lands days out of order and
compares). Each partition is replaced as one unit, as a landing replaces it; a crash between the
day's partition and a later one leaves a version in both, which the day's next run claims again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipelines.lib.lake import Lake

ZONES = ("raw", "quarantine")


def later_partitions(
    lake: Lake, dataset: str, day: dt.date, whole_history: bool
) -> dict[tuple[str, dt.date], pl.Series]:
    """The row hashes of the partitions a landing of ``day`` may claim from: the next day's raw
    partition (its overlap reaches into ``day``), every later raw partition of a table read whole,
    and every later quarantine partition (what every read finds is quarantined there)."""
    out: dict[tuple[str, dt.date], pl.Series] = {}
    for zone in ZONES:
        folder = lake.root / zone / dataset
        if not folder.exists():
            continue
        for part in folder.glob("business_date=*"):
            other = dt.date.fromisoformat(part.name.split("=", 1)[1])
            if other <= day:
                continue
            if zone == "quarantine" or whole_history or other == day + dt.timedelta(days=1):
                frame = lake.read_partition(zone, dataset, other, columns=["_row_hash"])
                if frame is not None and frame.height:
                    out[(zone, other)] = frame["_row_hash"]
    return out


def claimed(
    later: dict[tuple[str, dt.date], pl.Series],
    day: dt.date,
    landed: pl.Series,
    quarantined: pl.Series,
    whole_history: bool,
) -> dict[tuple[str, dt.date], pl.Series]:
    """Of the later partitions' rows, those a later day landed in order would have skipped as
    already landed by ``day`` (``landed`` and ``quarantined``: the row hashes this landing landed
    and quarantined): what ``day`` quarantined, for every later day; what it landed as well, for
    the next day (whose read overlaps it) or for a table read whole."""
    every = pl.concat([landed, quarantined]).implode()
    only_quarantined = quarantined.implode()
    out = {}
    for (zone, other), hashes in later.items():
        mine = every if whole_history or other == day + dt.timedelta(days=1) else only_quarantined
        taken = hashes.filter(hashes.is_in(mine))
        if taken.len():
            out[(zone, other)] = taken
    return out


def give_up(lake: Lake, dataset: str, claims: dict[tuple[str, dt.date], pl.Series]) -> None:
    """Remove the claimed rows from the later partitions, each partition (both zones and its
    state) replaced as one unit, its account moving them from landed or quarantined to skipped."""
    days = sorted({day for _, day in claims})
    for day in days:
        state = lake.read_state(dataset, day)
        frames = {zone: lake.read_partition(zone, dataset, day) for zone in ZONES}
        if state is None or any(frame is None for frame in frames.values()):
            continue  # a partition without a readable state counts as never landed
        removed = {}
        for zone in ZONES:
            taken = claims.get((zone, day))
            frame = frames[zone]
            if taken is not None:
                keep = ~frame["_row_hash"].is_in(taken.implode())
                removed[zone] = frame.filter(~keep)
                frames[zone] = frame.filter(keep)
        lake.publish_partition(
            dataset, day, frames["raw"], frames["quarantine"], _moved_to_skipped(state, removed)
        )


def _moved_to_skipped(state: dict[str, Any], removed: dict[str, pl.DataFrame]) -> dict[str, Any]:
    landed = removed["raw"].height if "raw" in removed else 0
    quarantined = removed["quarantine"].height if "quarantine" in removed else 0
    out = {k: v for k, v in state.items() if k != "token"}
    out["landed"] = state["landed"] - landed
    out["quarantined"] = state["quarantined"] - quarantined
    out["skipped"] = state["skipped"] + landed + quarantined
    detail = dict(state.get("skipped_detail") or {})
    detail["already_landed"] = detail.get("already_landed", 0) + landed + quarantined
    out["skipped_detail"] = detail
    if quarantined:
        rules = dict(state.get("rules") or {})
        for rule, n in removed["quarantine"].group_by("_rule").len().iter_rows():
            left = rules.get(rule, 0) - n
            if left > 0:
                rules[rule] = left
            else:
                rules.pop(rule, None)
        out["rules"] = dict(sorted(rules.items()))
    return out
