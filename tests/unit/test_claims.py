"""A backfilled day takes back from the days after it what they would have skipped had the days
been landed in order (pipelines/lib/claims.py), on real partitions of a scratch lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.lib.claims import claimed, give_up, later_partitions
from pipelines.lib.lake import Lake

pytestmark = pytest.mark.unit

D1, D2, D3 = (dt.date(2026, 10, d) for d in (1, 2, 3))
DATASET = "shop__orders"


def _rows(hashes: list[str], rule: str | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "id": pl.Series(range(len(hashes)), dtype=pl.Int64),
            "_row_hash": pl.Series(hashes, dtype=pl.String),
        }
    )
    if rule is not None:
        frame = frame.with_columns(_rule=pl.lit(rule))
    return frame


def _land(lake: Lake, day: dt.date, good: list[str], quarantined: list[str], skipped: int = 0):
    state = {
        "read": len(good) + len(quarantined) + skipped,
        "landed": len(good),
        "quarantined": len(quarantined),
        "skipped": skipped,
        "skipped_detail": {"already_landed": skipped},
        "rules": {"bad_amount": len(quarantined)} if quarantined else {},
    }
    lake.publish_partition(DATASET, day, _rows(good), _rows(quarantined, "bad_amount"), state)


def test_the_day_before_takes_back_its_overlap_and_what_it_quarantined(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    # D2 and D3 were landed first: D2's overlap holds a version of D1 (a), and both quarantined
    # a row every read finds (q)
    _land(lake, D2, ["a", "b"], ["q"])
    _land(lake, D3, ["a", "c"], ["q"], skipped=0)
    later = later_partitions(lake, DATASET, D1, whole_history=False)
    assert set(later) == {("raw", D2), ("quarantine", D2), ("quarantine", D3)}
    claims = claimed(later, D1, pl.Series(["a", "z"]), pl.Series(["q"]), whole_history=False)
    assert {k: v.to_list() for k, v in claims.items()} == {
        ("raw", D2): ["a"],
        ("quarantine", D2): ["q"],
        ("quarantine", D3): ["q"],
    }
    give_up(lake, DATASET, claims)
    assert lake.read_partition("raw", DATASET, D2)["_row_hash"].to_list() == ["b"]
    assert lake.read_partition("quarantine", DATASET, D2).is_empty()
    # D3's raw keeps `a`: landed in order, D3 reads only D2's partition, so it lands `a` too
    assert lake.read_partition("raw", DATASET, D3)["_row_hash"].to_list() == ["a", "c"]
    state = lake.read_state(DATASET, D2)
    assert (state["read"], state["landed"], state["quarantined"], state["skipped"]) == (3, 1, 0, 2)
    assert state["skipped_detail"] == {"already_landed": 2} and state["rules"] == {}
    assert lake.partition_is_whole(DATASET, D2) and lake.partition_is_whole(DATASET, D3)


def test_a_table_read_whole_is_claimed_from_every_later_day(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    _land(lake, D3, ["a", "b"], [])
    claims = claimed(
        later_partitions(lake, DATASET, D1, whole_history=True),
        D1,
        pl.Series(["a", "b"]),
        pl.Series([], dtype=pl.String),
        whole_history=True,
    )
    give_up(lake, DATASET, claims)
    assert lake.read_partition("raw", DATASET, D3).is_empty()
    assert lake.read_state(DATASET, D3)["skipped"] == 2


@given(
    later=st.lists(st.sampled_from("abcdef"), unique=True),
    landed=st.lists(st.sampled_from("abcdef"), unique=True),
)
def test_the_accounts_still_balance_after_a_claim(later, landed) -> None:
    """read = landed + quarantined + skipped holds for a partition whatever is claimed from it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp))
        _land(lake, D2, later, later[:1], skipped=1)
        claims = claimed(
            later_partitions(lake, DATASET, D1, whole_history=False),
            D1,
            pl.Series(landed, dtype=pl.String),
            pl.Series([], dtype=pl.String),
            whole_history=False,
        )
        give_up(lake, DATASET, claims)
        state = lake.read_state(DATASET, D2)
        assert state["read"] == state["landed"] + state["quarantined"] + state["skipped"]
        assert state["landed"] == lake.read_partition("raw", DATASET, D2).height
        assert state["landed"] == len(set(later) - set(landed))
