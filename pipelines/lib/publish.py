"""Publishing the marts: out of dbt's private build file, into the lake and the serving file.

    lake/_build/cardlake.duckdb                       dbt builds here; no reader opens it
    lake/marts/<mart>/business_date=YYYY-MM-DD/part-0.parquet   a mart with a ``business_date``
    lake/marts/<mart>/part-0.parquet                  a mart without one (dimensions)
    lake/warehouse.duckdb                             the same marts as tables, for readers (a
                                                      symlink to its version in lake/_serving/)

A publication rewrites only what changed. A mart's partition (one business day; the whole table
for an unpartitioned mart) is rewritten when the caller names its day in ``changed_days`` or when
its content digest (row count and an order-independent sum of row hashes, kept in the serving
file's ``_publication_partitions``) differs from the last publication, so a day the caller forgot
is still caught; days no longer in a mart are removed. The result equals a full rebuild: the same
Parquet bytes (rows sorted, fixed writer settings) and the same table contents. The digests cost
one hashing scan of every mart per publication (about 2.5 s for 30 M fact rows on two cores): the
price of never missing a past day that changed, as refund KPIs do when refunds land late.

As in the raw zone, a partition file holds every column but ``business_date``, which its folder
name carries (Hive style: Spark, Trino, DuckDB and polars read it back from the path).

The serving file is never written in place. The current version is copied to a temp file in
``lake/_serving/``, the changed partitions are replaced in the copy (delete the days, insert their
new rows; a table most of whose rows changed is rebuilt whole, and a publication that rewrites
most rows of the file starts from an empty one instead of a copy), it is checkpointed, closed and
fsynced, and then installed as the next version:
``warehouse.duckdb`` is a symlink that is swapped to it (``pipelines.lib.serving`` says why a
rename over the file itself is not enough for DuckDB). A reader that opened the old version keeps
reading it; one that opens afterwards sees the new one; none ever sees a mix, and none blocks, or
is blocked by, a publisher. Every mart is a real table inside the file, so readers open it with
every file operation disabled (``open_warehouse``). A lock file keeps two publishers from
interleaving.

Columns the dbt project marks ``meta: {pii: true}`` (raw contacts) never enter the serving file,
which every reader and the Analyst's SQL Lab see: a SQL parser's table check is no wall (DuckDB
reads tables through ``query_table()``, ``summarize``, ``pivot`` ...), a file without the data is.
The Parquet under ``lake/marts/`` keeps every column for the engineers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.lib import serving
from pipelines.lib.dbt import mart_docs, mart_keys, mart_pii_columns
from pipelines.lib.lake import Lake, fsync
from pipelines.lib.settings import ReaderLimits

#: the publishers' lock, in the lake's build zone
LOCK = "publish.lock"
PARTITION_COLUMN = "business_date"
#: columns an incremental model keeps for its own bookkeeping (docs/incremental.md): they differ
#: between two builds of the same rows, so they are never published
BUILD_COLUMNS = frozenset({"_built_at"})
PART_FILE = "part-0.parquet"
#: fixed writer settings: the same rows give the same bytes
PARQUET_OPTIONS = "format parquet, compression zstd, compression_level 3, row_group_size 122880"
#: how every reader opens a serving file: nothing outside it can be read, written or attached,
#: and no setting can be changed back (the bounds of ``reader_config`` included)
READER_CONFIG: Mapping[str, object] = {"enable_external_access": False, "lock_configuration": True}


def reader_config(lake: Lake | Path) -> dict[str, object]:
    """The config of every reader connection of the lake's serving files (``cardlake sql``,
    Superset through ``dashboards/superset_config.py``, the pipelines' own reads): closed to the
    file system, bounded in memory, threads and spill (``settings.ReaderLimits``), locked."""
    # in this order: DuckDB 1.4 refuses a temp_directory given after enable_external_access
    return {**READER_CONFIG, **ReaderLimits.from_env().config(Lake.of(lake).reader_temp)}


_MART_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

#: a partition's key: its business day, or None for the whole of an unpartitioned mart
Key = dt.date | None
#: a partition's content digest: (row count, sum of row hashes)
Digest = tuple[int, int]


class PublishError(RuntimeError):
    """The marts cannot be published (no build file, no marts, a mart that breaks the layout)."""


class WarehouseMissing(FileNotFoundError):
    """Nothing has been published to this lake yet."""


@dataclass(frozen=True)
class Publication:
    """What one publication did."""

    run_id: str
    marts: tuple[str, ...]
    rows: dict[str, int]
    #: business days whose partitions were rewritten or removed in any mart
    days: tuple[dt.date, ...]
    seconds: float
    #: Parquet files written (partitions plus unpartitioned marts)
    files_written: int = 0
    removed_marts: tuple[str, ...] = field(default=())
    #: where the time went: copying the serving file, digesting the marts, writing Parquet,
    #: updating the tables, checkpoint and fsync (seconds)
    phases: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MartPlan:
    """What to do with one mart: the partitions to write and to remove, and whether its table in
    the serving file is replaced whole (new mart, changed columns, full publication, most of its
    rows changed)."""

    name: str
    partitioned: bool
    write: tuple[Key, ...]
    remove: tuple[Key, ...]
    replace_table: bool

    @property
    def days(self) -> tuple[dt.date, ...]:
        return tuple(sorted(k for k in {*self.write, *self.remove} if k is not None))


def warehouse_path(lake: Lake | Path) -> Path:
    return Lake.of(lake).warehouse


def open_warehouse(lake: Lake | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published marts, with every file operation and every
    setting change disabled: the way any reader (CLI, Superset, tests) opens ``warehouse.duckdb``.

    A connection keeps reading the publication it opened, however many are published after it,
    so open one per query or session and close it (a pool must not keep one open) to see the
    latest publication. It opens the version ``warehouse.duckdb`` links to (``pipelines.lib.
    serving``), never the link: a swap while DuckDB is opening the file cannot mix two versions.
    """
    path = warehouse_path(lake)
    if not path.exists():
        raise WarehouseMissing(f"no warehouse at {path}: run `cardlake run` first")
    return serving.connect_read_only(path, reader_config(lake))


def plan_partitions(
    current: Mapping[Key, Digest],
    previous: Mapping[Key, Digest],
    on_disk: Iterable[Key],
    changed_days: Iterable[dt.date] | None,
) -> tuple[tuple[Key, ...], tuple[Key, ...]]:
    """The partitions to (re)write and to remove, given the build's digests, the last
    publication's, and the partition files present. ``changed_days`` None rewrites everything.

    A partition is written when it is new, named in ``changed_days``, its digest changed, or its
    file is missing; removed when it was published or is on disk but is no longer in the build.
    """
    disk = set(on_disk)
    if changed_days is None:
        write = set(current)
    else:
        named = set(changed_days)
        write = {
            k
            for k, digest in current.items()
            if k in named or previous.get(k) != digest or k not in disk
        }
    remove = ({*previous, *disk}) - set(current)
    return tuple(sorted(write, key=_key_order)), tuple(sorted(remove, key=_key_order))


def partition_path(lake: Lake | Path, mart: str, key: Key) -> Path:
    """The Parquet file of a partition (``key`` None: of an unpartitioned mart)."""
    folder = Lake.of(lake).marts / mart
    if key is None:
        return folder / PART_FILE
    return folder / f"{PARTITION_COLUMN}={key.isoformat()}" / PART_FILE


def partitions_on_disk(lake: Lake | Path, mart: str) -> set[Key]:
    """The partition files a mart has under ``lake/marts/<mart>/`` (None: the unpartitioned file)."""
    folder = Lake.of(lake).marts / mart
    found: set[Key] = set()
    if (folder / PART_FILE).exists():
        found.add(None)
    for path in folder.glob(f"{PARTITION_COLUMN}=*/{PART_FILE}"):
        with contextlib.suppress(ValueError):
            found.add(dt.date.fromisoformat(path.parent.name.split("=", 1)[1]))
    return found


def new_run_id() -> str:
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def publish(
    lake: Lake | Path,
    changed_days: Sequence[dt.date] | None = None,
    run_id: str | None = None,
    pii: Mapping[str, Iterable[str]] | None = None,
) -> Publication:
    """Publish every table of the build file's ``marts`` schema to ``lake/marts/`` (Parquet) and
    ``lake/warehouse.duckdb`` (tables), rewriting the partitions of ``changed_days`` and any
    partition whose content changed since the last publication; ``changed_days`` None rewrites
    everything and builds the serving file afresh. ``pii`` names each mart's PII columns (default:
    the dbt project's ``meta: {pii: true}`` columns). Blocks while another publisher runs."""
    lake = Lake.of(lake)
    pii_map = {m: frozenset(c) for m, c in (mart_pii_columns() if pii is None else pii).items()}
    build = lake.build_db
    if not build.exists():
        raise PublishError(f"no build database at {build}: run the dbt models first")
    started = time.perf_counter()
    run_id = run_id or new_run_id()
    if changed_days is not None:
        changed_days = [_as_date(d) for d in changed_days]
    with _publish_lock(lake):
        _clean_stale_temps(lake)
        live = warehouse_path(lake)
        tmp = serving.new_file(live)
        phases: dict[str, float] = {}
        try:
            con = duckdb.connect()
            try:
                result = _publish_with(con, lake, build, tmp, changed_days, run_id, pii_map, phases)
            finally:
                con.close()
            mark = time.perf_counter()
            serving.install(live, tmp)
            phases["fsync"] = time.perf_counter() - mark
        except BaseException:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            raise
    marts, rows, days, files, removed = result
    return Publication(
        run_id=run_id,
        marts=marts,
        rows=rows,
        days=days,
        seconds=time.perf_counter() - started,
        files_written=files,
        removed_marts=removed,
        phases={k: round(v, 3) for k, v in phases.items()},
    )


@dataclass(frozen=True)
class _Mart:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, type) in table order
    comment: str | None
    column_comments: Mapping[str, str | None]
    pii: frozenset[str] = frozenset()
    #: the column its Parquet rows are sorted by (unique and never null), None for every column
    key: str | None = None

    @property
    def partitioned(self) -> bool:
        return any(c == PARTITION_COLUMN for c, _ in self.columns)

    @property
    def served(self) -> tuple[tuple[str, str], ...]:
        """The columns its table in the serving file holds: all but the PII ones."""
        return tuple((c, t) for c, t in self.columns if c not in self.pii)


def _publish_with(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    build: Path,
    tmp: Path,
    changed_days: Sequence[dt.date] | None,
    run_id: str,
    pii: Mapping[str, frozenset[str]],
    phases: dict[str, float],
):
    con.execute(f"attach {_lit(build)} as build (read_only)")
    marts = _marts(con, pii, mart_keys(), mart_docs())
    if not marts:
        raise PublishError(f"the build database {build} has no tables in schema `marts`")
    live = warehouse_path(lake)
    previous_marts, previous_digests, previous_columns = {}, {}, {}
    if live.exists():
        try:
            con.execute(f"attach {_lit(serving.current(live))} as prev (read_only)")
            previous_marts, previous_digests, previous_columns = _previous(con, "prev")
            con.execute("detach prev")
        except duckdb.Error as exc:
            # a full publication is how an unreadable file gets replaced
            if changed_days is not None:
                raise PublishError(
                    f"cannot read the published warehouse {live} ({exc}); "
                    "a full publication (changed_days=None) rebuilds it"
                ) from exc
    if changed_days is None:
        # everything is written again; the live file only says which marts it held
        previous_digests, previous_columns = {}, {}

    plans: list[MartPlan] = []
    digests: dict[str, dict[Key, Digest]] = {}
    mark = time.perf_counter()
    for mart in marts.values():
        current = _digests(con, mart)
        digests[mart.name] = current
        same_columns = previous_columns.get(mart.name) == mart.served
        write, remove = plan_partitions(
            current,
            previous_digests.get(mart.name, {}) if same_columns else {},
            partitions_on_disk(lake, mart.name),
            changed_days if same_columns else None,
        )
        # a partitioned table most of whose rows changed is cheaper rebuilt than patched: deleting
        # and inserting every day of the 30-day lake's tables took 24.4 s, rebuilding them 17.5 s
        written_rows = sum(current[k][0] for k in write if k in current)
        replace = (
            not same_columns
            or (not mart.partitioned and bool(write))
            or (mart.partitioned and written_rows * 2 > sum(n for n, _ in current.values()))
        )
        plans.append(MartPlan(mart.name, mart.partitioned, write, remove, replace))

    phases["digest"] = time.perf_counter() - mark
    # The tables go into a copy of the live file, patched, unless most of their rows are rewritten:
    # then into an empty file, every table copied from the build. Patching leaves the blocks of
    # what it replaced free inside the copy (one day of the 30-day lake rewriting most of its KPI
    # rows grew the file from 1.2 to 2.0 GB), and rebuilding costs about as much as patching then.
    mark = time.perf_counter()
    total = sum(n for d in digests.values() for n, _ in d.values())
    rewritten = sum(_rows_rewritten(p, digests[p.name]) for p in plans)
    fresh = changed_days is None or not live.exists() or rewritten * 2 > total
    if not fresh:
        shutil.copyfile(serving.current(live), tmp)
    con.execute(f"attach {_lit(tmp)} as wh")
    phases["copy"] = time.perf_counter() - mark
    mark = time.perf_counter()
    files = _write_partitions(con, lake, [(marts[p.name], key) for p in plans for key in p.write])
    for plan in plans:
        for key in plan.remove:
            _remove_partition(lake, plan.name, key)
    removed = tuple(sorted(set(previous_marts) - set(marts)))
    for name in removed:
        shutil.rmtree(Lake.of(lake).marts / name, ignore_errors=True)
        con.execute(f"drop table if exists wh.main.{_id(name)}")

    phases["parquet"] = time.perf_counter() - mark
    mark = time.perf_counter()
    con.execute("begin")
    for plan in plans:
        _update_table(con, plan, marts[plan.name], fresh)
    for mart in marts.values():
        _copy_comments(con, mart)
    rows = {name: sum(n for n, _ in digests[name].values()) for name in marts}
    _write_manifest(con, run_id, plans, rows, digests)
    con.execute("commit")
    phases["tables"] = time.perf_counter() - mark
    mark = time.perf_counter()
    con.execute("checkpoint wh")
    con.execute("detach wh")
    con.execute("detach build")
    phases["checkpoint"] = time.perf_counter() - mark
    days = tuple(sorted({d for plan in plans for d in plan.days}))
    return tuple(marts), rows, days, files, removed


def _marts(
    con,
    pii: Mapping[str, frozenset[str]],
    keys: Mapping[str, str],
    docs: Mapping[str, tuple[str | None, Mapping[str, str]]],
) -> dict[str, _Mart]:
    """Every table (and view) of the build's ``marts`` schema, with its PII columns and its
    descriptions: what the build file holds, else the dbt project's (``docs``: the daily build
    does not write them into its file)."""
    relations = con.execute(
        """
        select table_name, comment from duckdb_tables()
        where database_name = 'build' and schema_name = 'marts'
        union all
        select view_name, comment from duckdb_views()
        where database_name = 'build' and schema_name = 'marts' and not internal
        order by 1
        """
    ).fetchall()
    columns = con.execute(
        """
        select table_name, column_name, data_type, comment from duckdb_columns()
        where database_name = 'build' and schema_name = 'marts'
        order by table_name, column_index
        """
    ).fetchall()
    out = {}
    for name, comment in relations:
        if not _MART_NAME.fullmatch(name):
            raise PublishError(f"mart name {name!r} is not a plain identifier")
        mine = [
            (c, t, note)
            for table, c, t, note in columns
            if table == name and c not in BUILD_COLUMNS
        ]
        marked = pii.get(name, frozenset())
        if unknown := marked - {c for c, _, _ in mine}:
            raise PublishError(f"mart {name}: PII columns {sorted(unknown)} are not in the table")
        described, column_docs = docs.get(name, (None, {}))
        out[name] = _Mart(
            name,
            tuple((c, t) for c, t, _ in mine),
            comment or described,
            {c: note or column_docs.get(c) for c, _, note in mine},
            frozenset(marked),
            keys.get(name) if keys.get(name) in {c for c, _, _ in mine} else None,
        )
    return out


def _previous(con, alias: str):
    """The last publication, as a serving file holds it: its marts, its partition digests and
    its tables' columns (all empty for a fresh file)."""
    tables = {
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main'",
            [alias],
        ).fetchall()
    }
    marts: list[str] = []
    digests: dict[str, dict[Key, Digest]] = {}
    if "_publication" in tables:
        marts = [
            m for (m,) in con.execute(f"select mart from {alias}.main._publication").fetchall()
        ]
    if "_publication_partitions" in tables:
        for mart, day, n, h in con.execute(
            "select mart, business_date, row_count, content_hash "
            f"from {alias}.main._publication_partitions"
        ).fetchall():
            digests.setdefault(mart, {})[day] = (int(n), int(h))
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, col, typ in con.execute(
        """
        select table_name, column_name, data_type from duckdb_columns()
        where database_name = ? and schema_name = 'main'
        order by table_name, column_index
        """,
        [alias],
    ).fetchall():
        columns.setdefault(table, []).append((col, typ))
    return marts, digests, {t: tuple(c) for t, c in columns.items()}


def _digests(con, mart: _Mart) -> dict[Key, Digest]:
    """Row count and sum of row hashes per business day (or of the whole mart)."""
    row_hash = f"hash({', '.join(_id(c) for c, _ in mart.columns)})::hugeint"
    source = f"build.marts.{_id(mart.name)}"
    if mart.partitioned:
        result = con.execute(
            f"select {_id(PARTITION_COLUMN)}, count(*), coalesce(sum({row_hash}), 0) "
            f"from {source} group by 1"
        ).fetchall()
        if any(day is None for day, _, _ in result):
            raise PublishError(
                f"mart {mart.name} has rows without a {PARTITION_COLUMN}: a partitioned mart needs a "
                "business day on every row"
            )
        return {day: (int(n), int(h)) for day, n, h in result}
    ((n, h),) = con.execute(
        f"select count(*), coalesce(sum({row_hash}), 0) from {source}"
    ).fetchall()
    return {None: (int(n), int(h))}


def _write_partitions(con, lake: Path, jobs: Sequence[tuple[_Mart, Key]]) -> int:
    """Write the partitions' files, one per core at a time. A day of a few hundred thousand rows
    is one Parquet row group, which DuckDB encodes on one thread: written one after the other,
    the files of a publication that touches many days used one core of two. Each file is still
    written whole and atomically by one statement (``_write_parquet``), so the bytes do not
    depend on the order. Returns the number of files written."""
    if not jobs:
        return 0
    local = threading.local()
    cursors: list[duckdb.DuckDBPyConnection] = []
    guard = threading.Lock()

    def write(job: tuple[_Mart, Key]) -> None:
        cursor = getattr(local, "cursor", None)
        if cursor is None:
            cursor = local.cursor = con.cursor()  # same database, its own connection
            with guard:
                cursors.append(cursor)
        _write_parquet(cursor, lake, *job)

    pool = ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1)))
    try:
        for future in [pool.submit(write, job) for job in jobs]:
            future.result()  # the first failure stops the files not yet started
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for cursor in cursors:
            cursor.close()
    return len(jobs)


def _write_parquet(con, lake: Path, mart: _Mart, key: Key) -> None:
    """Write one partition's file atomically (temp file, fsync, rename), rows sorted: by the mart's
    key where it has one (a total order: the same rows give the same bytes, for a fraction of the
    cost of comparing every column of a million-row day), else by every column."""
    final = partition_path(lake, mart.name, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")
    source = f"build.marts.{_id(mart.name)}"
    order = _id(mart.key) if mart.key else "all"
    kept = ", ".join(_id(c) for c, _ in mart.columns if c != PARTITION_COLUMN)
    if key is None:
        query = f"select {kept} from {source} order by {order}"
    else:
        query = (
            f"select {kept} from {source} where {_id(PARTITION_COLUMN)} = {_lit(key)}::date "
            f"order by {order}"
        )
    try:
        con.execute(f"copy ({query}) to {_lit(tmp)} ({PARQUET_OPTIONS})")
        fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync(final.parent)


def _remove_partition(lake: Path, mart: str, key: Key) -> None:
    path = partition_path(lake, mart, key)
    path.unlink(missing_ok=True)
    if key is not None:
        shutil.rmtree(path.parent, ignore_errors=True)


def _rows_rewritten(plan: MartPlan, digest: Mapping[Key, Digest]) -> int:
    """The rows of the mart's table the plan writes: all of them when it replaces the table."""
    if plan.replace_table:
        return sum(n for n, _ in digest.values())
    return sum(digest[k][0] for k in plan.write if k in digest)


def _update_table(con, plan: MartPlan, mart: _Mart, fresh: bool = False) -> None:
    """Bring the mart's table in the serving file up to the build: replace it whole (always, in
    a ``fresh`` file), or delete the changed days and insert their rows. Row order carries no
    meaning in a table, so a whole table is copied as it is (sorting a large fact table would
    triple the cost of a full publication); inserted days go in by day, which keeps each day's
    rows together."""
    target, source = f"wh.main.{_id(plan.name)}", f"build.marts.{_id(plan.name)}"
    served = ", ".join(_id(c) for c, _ in mart.served)
    if plan.replace_table or fresh:
        con.execute(f"create or replace table {target} as select {served} from {source}")
        return
    if not plan.days:
        return
    day = _id(PARTITION_COLUMN)
    days = ", ".join(f"{_lit(d)}::date" for d in plan.days)
    con.execute(f"delete from {target} where {day} in ({days})")
    written = ", ".join(f"{_lit(k)}::date" for k in plan.write if k is not None)
    if written:
        con.execute(
            f"insert into {target} select {served} from {source} where {day} in ({written}) "
            f"order by {day}"
        )


def _copy_comments(con, mart: _Mart) -> None:
    """The marts' descriptions (the build's, else the dbt YAML's) onto the serving table and columns."""
    target = f"wh.main.{_id(mart.name)}"
    con.execute(f"comment on table {target} is {_lit_or_null(mart.comment)}")
    for col, _ in mart.served:
        note = mart.column_comments.get(col)
        con.execute(f"comment on column {target}.{_id(col)} is {_lit_or_null(note)}")


def _write_manifest(con, run_id: str, plans: Sequence[MartPlan], rows, digests) -> None:
    con.execute(
        """
        create or replace table wh.main._publication (
            run_id varchar not null,
            published_at timestamptz not null,
            mart varchar not null,
            row_count bigint not null,
            is_partitioned boolean not null,
            partition_count bigint not null,
            is_rewritten boolean not null,
            changed_days date[]
        )
        """
    )
    published_at = dt.datetime.now(dt.UTC)
    con.executemany(
        "insert into wh.main._publication values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                run_id,
                published_at,
                p.name,
                rows[p.name],
                p.partitioned,
                len(digests[p.name]) if p.partitioned else 1,
                bool(p.write or p.remove or p.replace_table),
                list(p.days) if p.partitioned else None,
            ]
            for p in plans
        ],
    )
    con.execute(
        """
        create or replace table wh.main._publication_partitions (
            mart varchar not null,
            business_date date,
            row_count bigint not null,
            content_hash hugeint not null
        )
        """
    )
    con.executemany(
        "insert into wh.main._publication_partitions values (?, ?, ?, ?)",
        [
            [mart, key, n, h]
            for mart, parts in sorted(digests.items())
            for key, (n, h) in sorted(parts.items(), key=lambda kv: _key_order(kv[0]))
        ],
    )
    for table, text in _MANIFEST_DOCS.items():
        con.execute(f"comment on table wh.main.{table} is {_lit(text)}")


_MANIFEST_DOCS = {
    "_publication": "The publication this file holds: one row per mart, with the run that "
    "published it, its rows, and the business days this publication rewrote.",
    "_publication_partitions": "Content digest of every published partition (row count and sum "
    "of row hashes; business_date null for an unpartitioned mart): how the next publication "
    "finds the partitions that changed.",
}


@contextlib.contextmanager
def _publish_lock(lake: Lake) -> Iterator[None]:
    """An exclusive ``flock`` on ``lake/_build/publish.lock`` for the whole publication."""
    path = lake.build / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _clean_stale_temps(lake: Lake) -> None:
    """Remove temp files a crashed publisher left (never visible to readers). Under the lock."""
    serving.remove_stale(warehouse_path(lake))
    marts = lake.marts
    for pattern in (f"*/.{PART_FILE}.*.tmp", f"*/*/.{PART_FILE}.*.tmp"):
        for path in marts.glob(pattern):
            path.unlink(missing_ok=True)


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _key_order(key: Key) -> dt.date:
    return dt.date.min if key is None else key


def _id(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _lit_or_null(value: str | None) -> str:
    return "null" if value is None else _lit(value)
