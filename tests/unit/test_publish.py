"""The pure parts of publishing: which partitions a publication rewrites and removes, where
their files live, and when the SQL shell has read a whole statement."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.cli.sql import statement_complete
from pipelines.lib.publish import partition_path, partitions_on_disk
from pipelines.lib.publish_plan import MartPlan, plan_partitions

pytestmark = pytest.mark.unit

D1, D2, D3, D4 = (dt.date(2026, 10, d) for d in (1, 2, 3, 4))


def test_a_full_publication_rewrites_every_partition_and_drops_the_stale_ones() -> None:
    current = {D1: (10, 1), D2: (20, 2)}
    previous = {D1: (10, 1), D2: (20, 2), D3: (5, 3)}
    write, remove = plan_partitions(current, previous, {D1, D2, D3}, None)
    assert write == (D1, D2)
    assert remove == (D3,)


def test_an_incremental_publication_rewrites_named_and_changed_days_only() -> None:
    current = {D1: (10, 1), D2: (20, 2), D3: (30, 99), D4: (1, 4)}
    previous = {D1: (10, 1), D2: (20, 2), D3: (30, 3)}
    on_disk = {D1, D2, D3}
    # D2 is named (rewritten although its digest is the same); D3 changed but was not named
    # (late data the caller forgot); D4 is new
    write, remove = plan_partitions(current, previous, on_disk, [D2])
    assert write == (D2, D3, D4)
    assert remove == ()


def test_a_day_gone_from_the_build_is_removed_and_a_missing_file_rewritten() -> None:
    current = {D1: (10, 1), D2: (20, 2)}
    previous = {D1: (10, 1), D2: (20, 2), D3: (30, 3)}
    write, remove = plan_partitions(current, previous, {D2, D3}, [])
    assert write == (D1,)  # its file was deleted by hand
    assert remove == (D3,)


def test_nothing_changed_means_nothing_written() -> None:
    current = {D1: (10, 1), None: (3, 7)}
    assert plan_partitions(current, dict(current), set(current), []) == ((), ())


def test_an_unpartitioned_mart_is_one_partition_keyed_none() -> None:
    assert plan_partitions({None: (3, 8)}, {None: (3, 7)}, {None}, [D1]) == ((None,), ())
    # a mart that lost its business_date: the old day partitions go, the single file comes
    write, remove = plan_partitions({None: (3, 8)}, {}, {D1, D2}, None)
    assert write == (None,) and remove == (D1, D2)


@given(
    current=st.dictionaries(
        st.sampled_from([D1, D2, D3, D4]), st.tuples(st.integers(0, 3), st.just(0))
    ),
    previous=st.dictionaries(
        st.sampled_from([D1, D2, D3, D4]), st.tuples(st.integers(0, 3), st.just(0))
    ),
    on_disk=st.sets(st.sampled_from([D1, D2, D3, D4])),
    named=st.sets(st.sampled_from([D1, D2, D3, D4])),
)
def test_after_a_plan_the_files_are_exactly_the_builds_partitions(
    current, previous, on_disk, named
) -> None:
    write, remove = plan_partitions(current, previous, on_disk, named)
    assert not set(write) & set(remove)
    after = (on_disk - set(remove)) | set(write)
    assert after == set(current)
    # every partition not written is one whose published digest still holds
    for key in set(current) - set(write):
        assert previous.get(key) == current[key] and key in on_disk and key not in named


def test_plan_days_are_the_written_and_removed_business_days() -> None:
    plan = MartPlan("kpi_sales_daily", True, (D3, D1), (D2,), False)
    assert plan.days == (D1, D2, D3)
    assert MartPlan("dim_skus", False, (None,), (), True).days == ()


def test_partition_files_follow_the_hive_layout(tmp_path: Path) -> None:
    assert partition_path(tmp_path, "kpi_sales_daily", D1) == (
        tmp_path / "marts" / "kpi_sales_daily" / "business_date=2026-10-01" / "part-0.parquet"
    )
    assert partition_path(tmp_path, "dim_skus", None) == (
        tmp_path / "marts" / "dim_skus" / "part-0.parquet"
    )
    for key in (D1, D2, None):
        path = partition_path(tmp_path, "m", key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (tmp_path / "marts" / "m" / "business_date=junk").mkdir()
    (tmp_path / "marts" / "m" / "business_date=junk" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "marts" / "m" / "business_date=2026-10-09").mkdir()  # no file: not a partition
    assert partitions_on_disk(tmp_path, "m") == {D1, D2, None}
    assert partitions_on_disk(tmp_path, "absent") == set()


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("select 1;", True),
        ("select 1", False),
        ("select 1;  \n", True),
        ("select 1; -- done", True),
        ("select ';'", False),
        ("select ';' as x;", True),
        ("select 'it''s;'", False),
        ("select 'it''s'; ", True),
        ('select 1 as "a;b"', False),
        ("select 1 -- no end;", False),
        ("select 1 /* ; */", False),
        ("select 1 /* unclosed ;", False),
        ("select 'unclosed ;", False),
        ("", False),
        ("select 1;\nselect 2;", True),
    ],
)
def test_the_shell_runs_a_statement_once_it_ends_with_a_semicolon(
    text: str, complete: bool
) -> None:
    assert statement_complete(text) is complete
