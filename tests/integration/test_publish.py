"""Publishing the marts, for real: scratch build databases in a temp lake, real DuckDB files,
real processes publishing and reading at the same time, and the `cardlake sql` console script."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.lib import serving
from pipelines.lib.dbt import build_db
from pipelines.lib.lake import Lake
from pipelines.lib.publish import (
    BUILD_COLUMNS,
    LOCK,
    PublishError,
    WarehouseMissing,
    open_warehouse,
    publish,
    warehouse_path,
)
from tests.conftest import cardlake

pytestmark = pytest.mark.integration

DAY0 = dt.date(2026, 10, 1)


def _day(i: int) -> dt.date:
    return DAY0 + dt.timedelta(days=i)


def _build(lake: Path, *statements: str) -> None:
    """Run statements against the lake's build database (as dbt would build it)."""
    path = build_db(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        for sql in statements:
            con.execute(sql)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def _warehouse(lake: Path) -> dict[str, object]:
    """Everything a reader sees except the publication's own row (run id, time)."""
    with open_warehouse(lake) as con:
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'main' order by 1"
            ).fetchall()
        ]
        out: dict[str, object] = {
            "tables": tables,
            "comments": _rows(con, "select table_name, comment from duckdb_tables()"),
            "column_comments": _rows(
                con, "select table_name, column_name, data_type, comment from duckdb_columns()"
            ),
        }
        for table in tables:
            if table not in ("_publication", "_publication_storage"):
                out[table] = _rows(con, f'select * from "{table}"')
    return out


def _temp_files(lake: Path) -> list[Path]:
    """What a publisher builds in and swaps with: none may be left behind."""
    return serving.temp_files(warehouse_path(lake)) + list(lake.glob(".warehouse.duckdb*"))


def _parquet(lake: Path) -> dict[str, str]:
    """Every file under lake/marts: relative path -> content hash."""
    root = lake / "marts"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FIRST = (
    # a KPI per day and shop
    f"""create or replace table marts.kpi_sales_daily as
    select date '{DAY0}' + (i // 2)::int as business_date,
           case when i % 2 = 0 then 'main' else 'substation' end as shop,
           (100 + i)::bigint as paid_orders, (10000 * i)::bigint as gmv_fen
    from range(10) t(i)""",
    # a fact table, several rows per day
    f"""create or replace table marts.fct_orders as
    select date '{DAY0}' + (i % 5)::int as business_date, 'NO' || lpad(i::varchar, 6, '0') as order_no,
           (i * 37 % 1000)::bigint as amount_fen,
           timestamptz '2026-10-01 00:00:00+00' + to_seconds(i * 60) as paid_at,
           i % 7 = 0 as is_refunded
    from range(5000) t(i)""",
    # a dimension: no business_date, published as one file
    """create or replace table marts.dim_skus as
    select 'SKU' || i as sku_code, '点卡 ' || i as sku_name, i % 3 as category_id from range(50) t(i)""",
    "create or replace table marts.kpi_retired as select 1 as x",
    "comment on table marts.kpi_sales_daily is 'Sales KPIs per business day and shop (docs/metrics.md).'",
    "comment on column marts.kpi_sales_daily.gmv_fen is 'Σ amount paid of paid orders, in fen.'",
    "comment on column marts.dim_skus.sku_code is 'Canonical SKU.'",
)

SECOND = (
    # the caller names day 2 (rebuilt) and day 5 (new); day 0 changes too but is not named
    f"update marts.kpi_sales_daily set gmv_fen = gmv_fen + 1 where business_date = date '{_day(2)}'",
    f"update marts.fct_orders set amount_fen = amount_fen + 5 where business_date = date '{_day(2)}'",
    "update marts.fct_orders set is_refunded = true where order_no = 'NO000010'",  # day 0, late
    f"delete from marts.fct_orders where business_date = date '{_day(4)}'",  # a day gone
    f"delete from marts.kpi_sales_daily where business_date = date '{_day(4)}'",
    f"""insert into marts.kpi_sales_daily values
        (date '{_day(5)}', 'main', 7, 700), (date '{_day(5)}', 'substation', 8, 800)""",
    f"""insert into marts.fct_orders values
        (date '{_day(5)}', 'NO999999', 123, timestamptz '2026-10-06 01:00:00+00', false)""",
    "update marts.dim_skus set sku_name = sku_name || ' (新)' where sku_code = 'SKU3'",
    "drop table marts.kpi_retired",
    # a new mart, and a mart whose columns changed (a versioned change: rebuilt whole)
    f"""create table marts.kpi_refunds_daily as
    select date '{DAY0}' + i::int as business_date, i::bigint as refunds from range(3) t(i)""",
    "alter table marts.dim_skus add column is_active boolean default true",
    "comment on column marts.kpi_sales_daily.gmv_fen is 'GMV in fen, after coupons.'",
)


def test_incremental_publications_equal_a_full_rebuild(tmp_path: Path) -> None:
    lake, rebuilt = tmp_path / "lake", tmp_path / "rebuilt"
    _build(lake, *FIRST)
    first = publish(lake, run_id="first")
    assert first.marts == ("dim_skus", "fct_orders", "kpi_retired", "kpi_sales_daily")
    assert first.rows["fct_orders"] == 5000 and first.days == tuple(_day(i) for i in range(5))
    files = _parquet(lake)
    assert "fct_orders/business_date=2026-10-01/part-0.parquet" in files
    assert "dim_skus/part-0.parquet" in files
    kept = lake / "marts" / "fct_orders" / f"business_date={_day(1)}" / "part-0.parquet"
    kept_inode = kept.stat().st_ino

    _build(lake, *SECOND)
    second = publish(lake, changed_days=[_day(2), _day(5)], run_id="second")
    assert second.removed_marts == ("kpi_retired",)
    # day 0 changed without being named, day 4 is gone, days 2 and 5 were named; 1 and 3 untouched
    with open_warehouse(lake) as con:
        changed = dict(
            con.execute(
                "select mart, changed_days from _publication where is_partitioned"
            ).fetchall()
        )
    assert changed["fct_orders"] == [_day(i) for i in (0, 2, 4, 5)]
    assert changed["kpi_sales_daily"] == [_day(i) for i in (2, 4, 5)]
    assert changed["kpi_refunds_daily"] == [_day(i) for i in (0, 1, 2)]  # a new mart: all of it
    assert second.days == tuple(_day(i) for i in (0, 1, 2, 4, 5))
    assert kept.stat().st_ino == kept_inode, "an unchanged partition was rewritten"
    assert not (lake / "marts" / "kpi_retired").exists()
    assert not (lake / "marts" / "fct_orders" / f"business_date={_day(4)}").exists()

    # the same build published from scratch into another lake: equal whichever way each table
    # was brought up to date (fct_orders had more than half its rows rewritten and is rebuilt
    # whole; kpi_sales_daily, 4 rows of 10, has its days deleted and inserted)
    build_db(rebuilt).parent.mkdir(parents=True)
    shutil.copyfile(build_db(lake), build_db(rebuilt))
    full = publish(rebuilt, run_id="full")
    assert full.rows == second.rows
    assert _warehouse(lake) == _warehouse(rebuilt)
    assert _parquet(lake) == _parquet(rebuilt)

    # and both equal the build itself, through the warehouse and through the Parquet files
    with duckdb.connect(str(build_db(lake)), read_only=True) as build, open_warehouse(lake) as wh:
        for mart in ("kpi_sales_daily", "fct_orders", "dim_skus", "kpi_refunds_daily"):
            # every column but the build's own bookkeeping (an incremental mart's `_built_at`)
            columns = ", ".join(
                c
                for (c,) in build.execute(
                    f"select name from pragma_table_info('marts.{mart}')"
                ).fetchall()
                if c not in BUILD_COLUMNS
            )
            expected = _rows(build, f"select {columns} from marts.{mart}")
            assert _rows(wh, f"select * from {mart}") == expected
            parquet = lake / "marts" / mart
            source = (
                f"read_parquet('{parquet}/*/*.parquet', hive_partitioning = true)"
                if mart != "dim_skus"
                else f"read_parquet('{parquet}/part-0.parquet')"
            )
            assert _rows(build, f"select {columns} from {source}") == expected
        assert wh.execute(
            "select comment from duckdb_columns() where table_name = 'kpi_sales_daily' "
            "and column_name = 'gmv_fen'"
        ).fetchall() == [("GMV in fen, after coupons.",)]
        publication = wh.execute("select distinct run_id from _publication").fetchall()
        assert publication == [("second",)]

    # a third publication with nothing changed writes no file and keeps the contents
    before = _warehouse(lake)
    third = publish(lake, changed_days=[])
    assert third.files_written == 0 and third.days == ()
    assert _warehouse(lake) == before and _parquet(lake) == _parquet(rebuilt)
    assert not _temp_files(lake), "a temp file was left beside the warehouse"


def test_readers_can_query_the_marts_and_nothing_else(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(WarehouseMissing, match="run `cardlake run` first"):
        open_warehouse(lake)
    _build(lake, *FIRST)
    publish(lake)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    parquet = next((lake / "marts").rglob("*.parquet"))
    refused = [
        f"copy kpi_sales_daily to '{outside}/leak.csv'",
        f"copy (select 1) to '{outside}/leak.parquet' (format parquet)",
        f"export database '{outside}/export'",
        f"select * from read_parquet('{parquet}')",
        f"select * from '{parquet}'",
        f"select * from read_csv('{outside}/secret.csv')",
        f"select * from read_text('{outside}/secret.csv')",
        f"select * from glob('{outside}/*')",
        f"attach '{build_db(lake)}' as build (read_only)",
        f"attach '{outside}/new.duckdb' as scratch",
        "attach ':memory:' as scratch",
        "set enable_external_access = true",
        "set lock_configuration = false",
        "set threads = 1",
        "reset enable_external_access",
        "install httpfs",
        "load httpfs",
        "create table main.planted as select 1 as x",
        "delete from kpi_sales_daily",
        "drop table dim_skus",
    ]
    for sql in refused:
        with open_warehouse(lake) as con, pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    with open_warehouse(lake) as con:
        assert con.execute("select current_setting('enable_external_access')").fetchall() == [
            (False,)
        ]
        assert con.execute(
            "select sum(paid_orders), count(distinct business_date) from kpi_sales_daily"
        ).fetchall() == [(1045, 5)]
        assert con.execute(
            "select count(*) from fct_orders f join dim_skus d on true where d.sku_code = 'SKU1'"
        ).fetchall() == [(5000,)]


def test_a_failed_publication_leaves_the_last_one_in_place(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(PublishError, match="no build database"):
        publish(lake)
    _build(lake)
    with pytest.raises(PublishError, match="no tables in schema `marts`"):
        publish(lake)
    _build(lake, *FIRST)
    publish(lake, run_id="good")
    before = (_warehouse(lake), _parquet(lake))
    _build(lake, "insert into marts.kpi_sales_daily values (null, 'main', 1, 1)")
    with pytest.raises(PublishError, match="without a business_date"):
        publish(lake, changed_days=[_day(0)])
    assert (_warehouse(lake), _parquet(lake)) == before
    assert not _temp_files(lake)


def test_a_full_publication_replaces_an_unreadable_warehouse(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _build(lake, *FIRST)
    publish(lake)
    expected = _warehouse(lake)
    warehouse_path(lake).write_bytes(b"not a database" * 1000)
    with pytest.raises(PublishError, match="a full publication"):
        publish(lake, changed_days=[_day(0)])
    publish(lake)
    assert _warehouse(lake) == expected


def test_a_second_publisher_waits_for_the_lock(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _build(lake, *FIRST)
    lock = Lake(lake).build / LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ctx = mp.get_context("spawn")
    publisher = ctx.Process(target=publish, args=(lake,))
    publisher.start()
    try:
        # wait until the kernel lists the publisher as blocked on our lock (/proc/locks "->")
        inode = f":{lock.stat().st_ino} "
        deadline = time.monotonic() + 120
        while not any(
            "->" in line and f" {publisher.pid} " in line and inode in line
            for line in Path("/proc/locks").read_text().splitlines()
        ):
            assert publisher.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        assert not warehouse_path(lake).exists() and not (lake / "marts").exists()
    finally:
        os.close(fd)
        publisher.join(120)
    assert publisher.exitcode == 0
    assert warehouse_path(lake).exists()


# --- concurrency: readers while a publisher swaps in new versions ---------------------------

VERSIONS = 10
ROWS_PER_DAY = 40_000


def _version_days(v: int) -> list[dt.date]:
    """The days version v holds: a sliding window, so each publication adds and drops a day."""
    return [_day(v + i) for i in range(4)]


def _expected(v: int) -> tuple[int, int]:
    """(rows, Σ amount) of the fact mart at version v."""
    rows = 4 * ROWS_PER_DAY
    return rows, v * rows + sum(range(ROWS_PER_DAY)) * 4


def _build_version(lake: Path, v: int) -> None:
    days = ", ".join(f"date '{d}'" for d in _version_days(v))
    _build(
        lake,
        f"""create or replace table marts.fct_versions as
        select d.business_date, {v} as version, (r.i + {v})::bigint as amount
        from (select unnest([{days}]) as business_date) d, range({ROWS_PER_DAY}) r(i)""",
        f"""create or replace table marts.dim_versions as
        select {v} as version, 'v{v}-' || i as label from range(100) t(i)""",
    )


def _publisher(lake: Path, seen: list, failures) -> None:
    """Publish versions 2..VERSIONS; before each next one, wait until every reader has seen
    the last (a handshake, so every version is read while the next is being published). Version
    1 is published before the readers start, which on a loaded machine can take seconds: the
    handshake starts with it."""
    try:
        for v in range(1, VERSIONS + 1):
            if v > 1:
                _build_version(lake, v)
                publish(lake, changed_days=_version_days(v), run_id=f"v{v}")
            deadline = time.monotonic() + 120
            while min(s.value for s in seen) < v:
                if time.monotonic() > deadline:
                    failures.put(f"readers never saw version {v}")
                    return
                time.sleep(0.001)
    except Exception as exc:
        failures.put(f"publisher: {exc!r}")


def _reader(lake: Path, seen, done, results) -> None:
    """Query the warehouse in a loop, a fresh connection per query, until told to stop."""
    queries, versions, errors, mixes = 0, set(), [], []
    while not done.is_set():
        try:
            with open_warehouse(lake) as con:
                (row,) = con.execute(
                    """
                    select (select min(version) from fct_versions),
                           (select max(version) from fct_versions),
                           (select min(version) from dim_versions),
                           (select max(version) from dim_versions),
                           (select min(run_id) from _publication),
                           (select max(run_id) from _publication),
                           (select count(*) from fct_versions),
                           (select sum(amount) from fct_versions),
                           (select list(distinct business_date order by business_date)
                            from fct_versions)
                    """
                ).fetchall()
                # a second statement on the same connection reads the same publication
                (again,) = con.execute("select max(version) from dim_versions").fetchall()
        except Exception as exc:
            errors.append(repr(exc))
            continue
        queries += 1
        fmin, fmax, dmin, dmax, run_min, run_max, count, total, days = row
        v = fmin
        consistent = (
            fmin == fmax == dmin == dmax == again[0]
            and run_min == run_max == f"v{v}"
            and (count, total) == _expected(v)
            and days == _version_days(v)
        )
        if not consistent:
            mixes.append(repr(row))
        versions.add(v)
        seen.value = max(seen.value, v)
    results.put(
        {"queries": queries, "versions": sorted(versions), "errors": errors, "mixes": mixes}
    )


def test_readers_never_fail_and_never_see_two_publications_at_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _build_version(lake, 1)
    publish(lake, changed_days=_version_days(1), run_id="v1")
    ctx = mp.get_context("spawn")
    done, results, failures = ctx.Event(), ctx.Queue(), ctx.Queue()
    seen = [ctx.Value("i", 0, lock=False) for _ in range(2)]
    readers = [ctx.Process(target=_reader, args=(lake, s, done, results)) for s in seen]
    for r in readers:
        r.start()
    publisher = ctx.Process(target=_publisher, args=(lake, seen, failures))
    publisher.start()
    publisher.join(600)
    done.set()
    reports = [results.get(timeout=120) for _ in readers]
    for r in readers:
        r.join(60)
    assert publisher.exitcode == 0 and failures.empty(), failures.get()
    for report in reports:
        assert report["errors"] == [], report["errors"][:3]
        assert report["mixes"] == [], report["mixes"][:3]
        assert report["versions"] == list(range(1, VERSIONS + 1))
        assert report["queries"] >= VERSIONS
    with open_warehouse(lake) as con:
        assert con.execute("select distinct run_id from _publication").fetchall() == [
            (f"v{VERSIONS}",)
        ]


# --- cardlake sql ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("sql") / "lake"
    _build(lake, *FIRST)
    publish(lake, run_id="cli-test")
    return lake


def test_sql_prints_the_rows_of_a_query(published_lake: Path) -> None:
    query = "select shop, sum(paid_orders) as paid from kpi_sales_daily group by 1 order by 1"
    out = cardlake("sql", "--lake", str(published_lake), query)
    assert out.returncode == 0, out.stderr
    assert "shop" in out.stdout and "paid" in out.stdout
    assert "main" in out.stdout and "520" in out.stdout and "525" in out.stdout
    assert "2 rows" in out.stdout
    csv = cardlake("sql", "--lake", str(published_lake), "--format", "csv", query)
    assert csv.stdout == "shop,paid\nmain,520\nsubstation,525\n"
    js = cardlake(
        "sql",
        "--lake",
        str(published_lake),
        "-f",
        "json",
        "select * from _publication where mart = 'dim_skus'",
    )
    import json

    (record,) = json.loads(js.stdout)
    assert record["run_id"] == "cli-test" and record["row_count"] == 50


def test_sql_refuses_to_write_a_file(published_lake: Path, tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    out = cardlake("sql", "--lake", str(published_lake), f"copy fct_orders to '{target}'")
    assert out.returncode == 1
    assert "error" in out.stderr and "disabled" in out.stderr and "read-only" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not target.exists()
    for sql in (
        f"select * from read_csv('{tmp_path}/x.csv')",
        "set threads = 1",
        "attach ':memory:' as m",
    ):
        out = cardlake("sql", "--lake", str(published_lake), sql)
        assert out.returncode == 1 and "error" in out.stderr and "Traceback" not in out.stderr


def test_sql_without_a_warehouse_says_to_run_first(tmp_path: Path) -> None:
    out = cardlake("sql", "--lake", str(tmp_path / "empty"), "select 1")
    assert out.returncode == 2
    assert "run `cardlake run` first" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_sql_shell_reads_statements_until_a_semicolon(published_lake: Path) -> None:
    script = "\n".join(
        [
            ".tables",
            "select count(*) as n",
            "  from fct_orders;",
            "copy dim_skus to 'x.csv';",
            "select 'still here' as msg;",
            ".quit",
            "select 'never run';",
        ]
    )
    out = cardlake("sql", "--lake", str(published_lake), stdin=script)
    assert out.returncode == 0, out.stderr
    for text in ("kpi_sales_daily", "dim_skus", "_publication", "5000", "still here"):
        assert text in out.stdout
    assert "never run" not in out.stdout
    assert "disabled" in out.stderr and "Traceback" not in out.stderr


def test_sql_shell_follows_new_publications(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _build(lake, *FIRST)
    publish(lake, run_id="before")
    shell = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sql", "--lake", str(lake)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )

    def ask(sql: str) -> str:
        """Send a statement; read the shell's answer up to its row count line."""
        shell.stdin.write(sql + "\n")
        shell.stdin.flush()
        lines = []
        while not lines or not lines[-1].rstrip().endswith(("row", "rows")):
            line = shell.stdout.readline()
            assert line, shell.stderr.read()
            lines.append(line)
        return "".join(lines)

    try:
        assert "before" in ask("select distinct run_id from _publication;")
        publish(lake, changed_days=[], run_id="after")
        answer = ask("select distinct run_id from _publication;")
        assert "after" in answer and "reopened" in answer
    finally:
        shell.stdin.close()
        shell.wait(60)
    assert shell.returncode == 0


def test_pii_columns_stay_out_of_the_serving_file(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    users = (
        "create or replace table marts.dim_users as select 'U' || i as user_key, "
        "['main.orders:phone:1380013' || lpad(i::varchar, 4, '0')] as identifiers, "
        "'*******' || lpad(i::varchar, 4, '0') as contact_masked from range(10) t(i)"
    )
    _build(lake, users)
    pii = {"dim_users": ["identifiers"]}
    publish(lake, pii=pii)
    _build(lake, users.replace("range(10)", "range(12)"))
    publish(lake, changed_days=[_day(0)], pii=pii)
    with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
        columns = _rows(
            con, "select schema_name, table_name, column_name from duckdb_columns() order by all"
        )
        assert ("main", "dim_users", "identifiers") not in columns
        assert not [c for c in columns if "identifiers" in c], columns
        assert _rows(con, "select count(*), count(contact_masked) from dim_users") == [(12, 12)]
    # the engineers' Parquet keeps every column
    parquet = lake / "marts" / "dim_users" / "part-0.parquet"
    with duckdb.connect() as con:
        names = [r[0] for r in con.execute(f"describe select * from '{parquet}'").fetchall()]
    assert "identifiers" in names
    with pytest.raises(PublishError, match="PII columns"):
        publish(lake, pii={"dim_users": ["no_such_column"]})
