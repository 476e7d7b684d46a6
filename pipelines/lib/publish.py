"""Publishing the marts: out of dbt's private build file, into the lake and the serving file.

    lake/_build/cardlake.duckdb                       dbt builds here; no reader opens it
    lake/marts/<mart>/business_date=YYYY-MM-DD/part-0.parquet   a mart with a ``business_date``
    lake/marts/<mart>/part-0.parquet                  a mart without one (dimensions)
    lake/warehouse.duckdb                             the same marts as tables, for readers (a
                                                      symlink to its version in lake/_serving/)

A publication rewrites only what changed (``pipelines.lib.publish_plan`` decides what): a mart's
Parquet partition (one business day; the whole table for an unpartitioned mart) and the rows of
its serving table, found from the mart's change log where it is an incremental mart (the keys whose
content changed, and their days), else from content digests per partition compared with the last
publication's; days the caller names in ``changed_days`` are rewritten too, and days no longer in a
mart are removed. The result equals a full rebuild: the same Parquet bytes (rows sorted, fixed
writer settings) and the same table contents.

As in the raw zone, a partition file holds every column but ``business_date``, which its folder
name carries (Hive style: Spark, Trino, DuckDB and polars read it back from the path).

The serving file is never written in place. The current version is copied to a temp file in
``lake/_serving/``, the changes are applied to the copy (the changed keys of a mart published from
its change log, the changed days of the others; a table most of whose rows changed is rebuilt
whole, and a publication that rewrites most rows of the file starts from an empty one instead of a
copy), it is checkpointed, closed and fsynced, and then installed as the next version:
``warehouse.duckdb`` is a symlink that is swapped to it (``pipelines.lib.serving`` says why a
rename over the file itself is not enough for DuckDB). A patched copy keeps the space of what it
replaced; when it grows past ``publish_manifest.COMPACT_ABOVE`` times the size a fresh file of as many rows had, it
is copied into a fresh file before it is installed. A reader that opened the old version keeps
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
from pipelines.lib.publish_manifest import (
    Storage,
    read_previous,
    write_manifest,
)
from pipelines.lib.publish_plan import (
    PARTITION_COLUMN,
    PUBLISHER,
    Digest,
    Key,
    MartPlan,
    Previous,
    PublishError,
    plan_mart,
    read_logs,
)
from pipelines.lib.publish_plan import literal as _lit
from pipelines.lib.publish_plan import quote as _id
from pipelines.lib.settings import ReaderLimits

#: the publishers' lock, in the lake's build zone
LOCK = "publish.lock"
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
    #: where the time went: copying the serving file, planning (change logs and digests),
    #: writing Parquet, updating the tables, checkpoint, compaction and fsync (seconds)
    phases: dict[str, float] = field(default_factory=dict)
    #: the marts published from their change logs
    from_logs: tuple[str, ...] = field(default=())
    #: marts with a change log that were digested instead, and why
    digested: dict[str, str] = field(default_factory=dict)
    #: whether the patched serving file outgrew its bound and was copied into a fresh one
    compacted: bool = False


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
            installed, latest_run, marts, rows, days, files, removed, plans = result
            mark = time.perf_counter()
            serving.install(live, installed)
            phases["fsync"] = time.perf_counter() - mark
        except BaseException:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            raise
        _record_mark(build, latest_run)
    return Publication(
        run_id=run_id,
        marts=marts,
        rows=rows,
        days=days,
        seconds=time.perf_counter() - started,
        files_written=files,
        removed_marts=removed,
        phases={k: round(v, 3) for k, v in phases.items()},
        from_logs=tuple(p.name for p in plans if p.key_columns),
        digested={p.name: p.digested_because for p in plans if p.digested_because},
        compacted="compact" in phases,
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
    previous, storage = Previous(), Storage()
    if live.exists():
        try:
            con.execute(f"attach {_lit(serving.current(live))} as prev (read_only)")
            previous, storage = read_previous(con, "prev", serving.current(live))
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
        previous = Previous(marts=previous.marts)
    logs = read_logs(con)

    plans: list[MartPlan] = []
    counts: dict[str, dict[Key, Digest]] = {}
    mark = time.perf_counter()
    for mart in marts.values():
        plan, counts[mart.name] = plan_mart(
            con,
            mart.name,
            [c for c, _ in mart.columns],
            mart.served,
            previous,
            logs,
            partitions_on_disk(lake, mart.name),
            changed_days,
        )
        plans.append(plan)
    phases["digest"] = time.perf_counter() - mark

    # The tables go into a copy of the live file, patched, unless most of their rows are rewritten:
    # then into an empty file, every table copied from the build. Patching leaves the blocks of
    # what it replaced free inside the copy (one day of the 30-day lake rewriting most of its KPI
    # rows grew the file from 1.2 to 2.0 GB), and rebuilding costs about as much as patching then.
    mark = time.perf_counter()
    rows = {name: sum(n for n, _ in counts[name].values()) for name in marts}
    total = sum(rows.values())
    fresh = (
        changed_days is None or not live.exists() or sum(p.rows_written for p in plans) * 2 > total
    )
    if not fresh:
        shutil.copyfile(serving.current(live), tmp)
    con.execute(f"attach {_lit(tmp)} as wh")
    phases["copy"] = time.perf_counter() - mark
    mark = time.perf_counter()
    files = _write_partitions(con, lake, [(marts[p.name], key) for p in plans for key in p.write])
    for plan in plans:
        for key in plan.remove:
            _remove_partition(lake, plan.name, key)
    removed = tuple(sorted(set(previous.marts) - set(marts)))
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
    storage = Storage() if fresh else storage
    write_manifest(con, run_id, plans, rows, counts, storage)
    con.execute("commit")
    phases["tables"] = time.perf_counter() - mark
    mark = time.perf_counter()
    con.execute("checkpoint wh")
    con.execute("detach wh")
    con.execute("detach build")
    phases["checkpoint"] = time.perf_counter() - mark
    installed = tmp
    if not fresh and storage.outgrown(tmp.stat().st_size, total):
        mark = time.perf_counter()
        installed = _compact(con, tmp, warehouse_path(lake))
        phases["compact"] = time.perf_counter() - mark
    days = tuple(sorted({d for plan in plans for d in plan.days}))
    return installed, logs.latest_run, tuple(marts), rows, days, files, removed, plans


def _compact(con, patched: Path, live: Path) -> Path:
    """Copy a patched serving file into a fresh one (what a patch freed is left behind) and
    remove it: returns the fresh file, which is then installed instead."""
    fresh = serving.new_file(live)
    try:
        con.execute(f"attach {_lit(patched)} as patched (read_only)")
        con.execute(f"attach {_lit(fresh)} as wh")
        con.execute("copy from database patched to wh")
        con.execute("update wh.main._publication_storage set fresh_bytes = null, fresh_rows = null")
        con.execute("checkpoint wh")
        con.execute("detach wh")
        con.execute("detach patched")
    except BaseException:
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    patched.unlink()
    return fresh


def _record_mark(build: Path, latest_run: dt.datetime | None) -> None:
    """Tell the build file's change logs that the publisher has read them up to ``latest_run``
    (``changes._runs``, model ``'_publish'``), so that runs do not prune log rows before it reads
    them. Best effort: without it the next publication digests the marts whose logs a run pruned,
    which is slower, not wrong."""
    if latest_run is None:
        return
    with contextlib.suppress(duckdb.Error), duckdb.connect(str(build)) as con:
        con.execute("begin")
        con.execute("delete from changes._runs where model = ?", [PUBLISHER])
        con.execute("insert into changes._runs values (?, ?, false)", [PUBLISHER, latest_run])
        con.execute("commit")


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


def _update_table(con, plan: MartPlan, mart: _Mart, fresh: bool = False) -> None:
    """Bring the mart's table in the serving file up to the build: replace it whole (always, in
    a ``fresh`` file); or delete the keys its change log names and insert their rows; or delete
    the changed days and insert their rows. Row order carries no meaning in a table, so a whole
    table is copied as it is (sorting a large fact table would triple the cost of a full
    publication); inserted days go in by day, which keeps each day's rows together."""
    target, source = f"wh.main.{_id(plan.name)}", f"build.marts.{_id(plan.name)}"
    served = ", ".join(_id(c) for c, _ in mart.served)
    if plan.replace_table or fresh:
        con.execute(f"create or replace table {target} as select {served} from {source}")
        return
    day = _id(PARTITION_COLUMN)
    if plan.key_columns:
        if plan.patch is None:
            return
        keys = ", ".join(_id(c) for c in plan.key_columns)
        con.execute(f"delete from {target} where ({keys}) in ({plan.patch})")
        order = f" order by {day}" if plan.partitioned else ""
        con.execute(
            f"insert into {target} select {served} from {source} "
            f"where ({keys}) in ({plan.patch}){order}"
        )
        return
    if not plan.days:
        return
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


def _lit_or_null(value: str | None) -> str:
    return "null" if value is None else _lit(value)
