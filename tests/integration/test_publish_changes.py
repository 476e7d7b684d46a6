"""Publishing from the marts' change logs: a scratch build file whose marts are rebuilt by key and
log what they rebuilt the way the dbt macros do (macros/changes.sql: the rows before and after,
with the hash of their content), published day after day into a real lake and compared with a
full publication of the same build."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.dbt import build_db
from pipelines.lib.lake import Lake
from pipelines.lib.publish import publish, warehouse_path
from pipelines.lib.publish_manifest import COMPACT_ABOVE
from pipelines.lib.publish_plan import PUBLISHER
from tests.integration.test_publish import _parquet, _warehouse

pytestmark = pytest.mark.integration

DAY0 = dt.date(2026, 10, 1)
ORDERS_PER_DAY = 6000
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)

# the macros' content hash of a mart's rows (macro log_content)
CONTENT = "cast(sum(hash(*columns(* exclude (_built_at)))) as hugeint)"
LOGGED = {"fct_orders": "order_no, business_date", "kpi_daily": "business_date"}
KEYS = {"fct_orders": ["order_no"], "kpi_daily": ["business_date"]}


def _create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema marts")
    con.execute("create schema changes")
    con.execute('create table changes._runs (model varchar, run_at timestamptz, "full" boolean)')
    con.execute("create table changes._keys (model varchar primary key, key_columns varchar[])")
    con.execute(
        "create table marts.fct_orders (business_date date, order_no varchar, "
        "user_key varchar, amount_fen bigint, _built_at timestamptz)"
    )
    con.execute(
        "create table marts.kpi_daily (business_date date, shop varchar, gmv_fen bigint, "
        "_built_at timestamptz)"
    )
    # a mart without a change log: digested
    con.execute("create table marts.dim_shops as select 'main' as shop, '主站' as shop_name")
    for mart, keys in KEYS.items():
        con.execute(
            f"create table changes.{mart} as select {LOGGED[mart]}, {CONTENT} as _content, "
            f"now() as run_at from marts.{mart} group by all limit 0"
        )
        con.execute("insert into changes._keys values (?, ?)", [mart, keys])


def _rebuild(con, mart: str, keys: str, rows: str, run_at: dt.datetime, full: bool) -> None:
    """What an incremental build does (macros before_build / after_build): log the rows of the
    change set ``keys`` as they are, replace them by ``rows`` (a query that may read the change
    set as ``change_set``), log them as they are now, record the build. A full build replaces
    everything and starts its log afresh."""
    if full:
        con.execute(f"delete from marts.{mart}")
        con.execute(f"delete from changes.{mart}")
        con.execute(f"insert into marts.{mart} select *, ?::timestamptz from ({rows})", [run_at])
    else:
        con.execute(f"create or replace temp table change_set as {keys}")
        where = f"({', '.join(KEYS[mart])}) in (select * from change_set)"
        con.execute(
            f"insert into changes.{mart} select {LOGGED[mart]}, {CONTENT}, ? "
            f"from marts.{mart} where {where} group by all",
            [run_at],
        )
        con.execute(f"create or replace temp table rebuilt as {rows}")
        con.execute(f"delete from marts.{mart} where {where}")
        con.execute(f"insert into marts.{mart} select *, ?::timestamptz from rebuilt", [run_at])
        con.execute(
            f"insert into changes.{mart} select {LOGGED[mart]}, {CONTENT}, ? "
            f"from marts.{mart} where _built_at = ? group by all",
            [run_at, run_at],
        )
    con.execute(f"insert into changes._runs values ('{mart}', ?, ?)", [run_at, full])
    # prune as record_build does: log rows older than every model's latest build (the
    # publisher's mark among them)
    con.execute(
        f"delete from changes.{mart} where run_at < (select min(m) from "
        "(select max(run_at) as m from changes._runs group by model))"
    )


def _orders(first_day: int, days: int, version: int) -> str:
    """Orders of days ``first_day`` .. ``first_day + days - 1``: every 97th order of a day has
    been merged into another user in ``version`` (a new day's identifiers joined two users)."""
    return f"""
        select date '{DAY0}' + d::int as business_date,
               'NO' || lpad(d::varchar, 3, '0') || lpad(i::varchar, 6, '0') as order_no,
               case when i % 97 = {version} % 97 then 'U-merged-{version}'
                    else 'U' || (i * 7919 % 5000) end as user_key,
               (i * 37 % 10000)::bigint as amount_fen
        from range({first_day}, {first_day + days}) s(d), range({ORDERS_PER_DAY}) t(i)"""


def _kpis(first_day: int, days: int) -> str:
    return f"""
        select business_date, 'all' as shop, sum(amount_fen)::bigint as gmv_fen
        from marts.fct_orders
        where business_date between date '{DAY0}' + {first_day}
            and date '{DAY0}' + {first_day + days - 1}
        group by all"""


def _build_day(lake: Path, day: int) -> None:
    """Run ``day`` of the shop: day 0 builds every mart in full (10 days of history); each later
    day adds its orders, merges users on one order in 97 of every earlier day, and rebuilds the
    KPIs of the last three days (two of them unchanged)."""
    path = build_db(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_at = T0 + dt.timedelta(days=day)
    with duckdb.connect(str(path)) as con:
        if day == 0:
            _create(con)
            _rebuild(con, "fct_orders", "", _orders(0, 10, 0), run_at, True)
            _rebuild(con, "kpi_daily", "", "select * from (" + _kpis(0, 10) + ")", run_at, True)
            return
        new = 9 + day
        history = _orders(0, new + 1, day)
        keys = f"""
            select order_no from ({history})
            where user_key = 'U-merged-{day}' or business_date = date '{DAY0}' + {new}
            union
            select order_no from marts.fct_orders where user_key = 'U-merged-{day - 1}'"""
        rows = f"select * from ({history}) where order_no in (select * from change_set)"
        _rebuild(con, "fct_orders", keys, rows, run_at, False)
        days = f"select distinct business_date from ({_kpis(new - 2, 3)})"
        _rebuild(con, "kpi_daily", days, _kpis(new - 2, 3), run_at, False)


def _full_publication_of(lake: Path, other: Path) -> None:
    build_db(other).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build_db(lake), build_db(other))
    publish(other, run_id="x")


def _inodes(lake: Path, mart: str) -> dict[str, int]:
    return {
        p.parent.name: p.stat().st_ino for p in (Lake(lake).marts / mart).glob("*/part-0.parquet")
    }


def test_thirty_days_published_from_change_logs_equal_a_full_publication(tmp_path: Path) -> None:
    lake, rebuilt = tmp_path / "lake", tmp_path / "rebuilt"
    _build_day(lake, 0)
    first = publish(lake, changed_days=[DAY0], run_id="x")
    # never published from a log before: every mart is digested (and written whole: no file yet)
    assert first.from_logs == ()
    assert first.digested == {
        "fct_orders": "no publication from its change log yet",
        "kpi_daily": "no publication from its change log yet",
    }
    sizes, compacted = [], 0
    for day in range(1, 31):
        _build_day(lake, day)
        before = _inodes(lake, "kpi_daily")
        new_day = DAY0 + dt.timedelta(days=9 + day)
        done = publish(lake, changed_days=[new_day], run_id="x")
        assert done.from_logs == ("fct_orders", "kpi_daily"), done.digested
        assert done.digested == {}
        # the orders of every earlier day changed (one merged user's), the KPIs of one day
        assert set(done.days) == {DAY0 + dt.timedelta(days=d) for d in range(10 + day)}
        after = _inodes(lake, "kpi_daily")
        rewritten = {d for d in after if before.get(d) != after[d]}
        assert rewritten == {f"business_date={new_day}"}, "an unchanged KPI day was rewritten"
        sizes.append(serving_size(lake))
        compacted += done.compacted
        with duckdb.connect(str(build_db(lake)), read_only=True) as con:
            mark = con.execute(
                "select max(run_at) from changes._runs where model = ?", [PUBLISHER]
            ).fetchone()[0]
        assert mark == T0 + dt.timedelta(days=day)

    _full_publication_of(lake, rebuilt)
    assert _warehouse(lake) == _warehouse(rebuilt)
    assert _parquet(lake) == _parquet(rebuilt)
    fresh = serving_size(rebuilt)
    # the patched file stays within its bound of a fresh one, compacted when it grows past it
    # (without that it keeps the blocks of every day's replaced rows); the bound is kept by the
    # last fresh file's size per row, so allow two DuckDB blocks of slack
    assert compacted > 0
    assert max(sizes[-5:]) <= COMPACT_ABOVE * fresh + 2 * 262_144, (sizes, fresh)


def serving_size(lake: Path) -> int:
    return warehouse_path(lake).resolve().stat().st_size


def test_a_mart_rebuilt_in_full_or_with_its_log_pruned_is_digested(tmp_path: Path) -> None:
    lake, rebuilt = tmp_path / "lake", tmp_path / "rebuilt"
    _build_day(lake, 0)
    publish(lake, changed_days=[DAY0])
    _build_day(lake, 1)
    assert publish(lake, changed_days=[]).from_logs == ("fct_orders", "kpi_daily")

    # the KPIs rebuilt in full (their log starts afresh)
    with duckdb.connect(str(build_db(lake))) as con:
        _rebuild(con, "kpi_daily", "", _kpis(0, 11), T0 + dt.timedelta(days=1.5), True)
    done = publish(lake, changed_days=[])
    assert done.digested == {"kpi_daily": "rebuilt in full since the last publication"}
    assert done.from_logs == ("fct_orders",)

    # two runs without a publication between them, and the publisher's mark lost: the second
    # run prunes what the first logged
    _build_day(lake, 2)
    with duckdb.connect(str(build_db(lake))) as con:
        con.execute("delete from changes._runs where model = ?", [PUBLISHER])
    _build_day(lake, 3)
    done = publish(lake, changed_days=[])
    assert done.digested == {
        "fct_orders": "its change log was pruned since the last publication",
        "kpi_daily": "its change log was pruned since the last publication",
    }
    _full_publication_of(lake, rebuilt)
    assert _warehouse(lake) == _warehouse(rebuilt)
    assert _parquet(lake) == _parquet(rebuilt)
