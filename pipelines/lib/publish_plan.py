"""What a publication rewrites, mart by mart (``pipelines.lib.publish`` writes it).

A publication rewrites a mart's Parquet partition (one business day; the whole file of a mart
without days) and the rows of its serving table only where the build changed them since the last
publication. Two ways to know where:

- **From the change log** (the incremental marts, docs/incremental.md). Every build of such a mart
  logs, in the build file's ``changes`` schema, each key it rebuilt or removed, as it was and as
  it is, with ``_content``: the sum of the hashes of every column of the key's rows. Over all the
  runs since the last publication a key's logged rows pair up (each run logs what the last one
  logged as "after" again as "before"), so the rows logged an odd number of times are exactly the
  keys whose content differs from what was published: the serving table replaces those keys' rows,
  and the Parquet days they were on or are on now are rewritten. The cost follows the change, not
  the mart: a late refund rewrites one order's row and its day.
- **From content digests** (every other mart): row count and an order-independent sum of row
  hashes per partition, compared with the last publication's (kept in the serving file's
  ``_publication_partitions``). The cost is one hashing scan of the mart.

Every partition's digest is kept either way (the settlement reports watch them to know which
reports a publication may have changed): a mart published from its log hashes again only the
partitions it rewrites and keeps the others' digests.

A mart with a change log is digested instead when its log cannot show everything since the last
publication: the serving file has no mark for it (the first publication, a file from before change
logs), it was rebuilt in full since (its log starts afresh), or a run pruned log rows the publisher
had not read (``changes._runs`` keeps the publisher's mark, ``'_publish'``, so a normal cycle never
prunes them). A mart digested without previous digests is rewritten whole.

Either way a partition the caller names in ``changed_days``, and one whose file is missing, is
written too, and a day no longer in the build is removed: the result equals a full rebuild.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: the column a partitioned mart is split by into one Parquet folder per day
PARTITION_COLUMN = "business_date"
#: what the publisher is called in the build file's ``changes._runs`` (macro ``publisher()``)
PUBLISHER = "_publish"


class PublishError(RuntimeError):
    """The marts cannot be published (no build file, no marts, a mart that breaks the layout)."""


#: a partition's key: its business day, or None for the whole of an unpartitioned mart
Key = dt.date | None
#: a partition's content digest: (row count, sum of row hashes); ``row_counts`` leaves the hash
#: out (None) where only the count is needed
Digest = tuple[int, int | None]


@dataclass(frozen=True)
class MartPlan:
    """What to do with one mart: the partitions to write and to remove, and how its table in the
    serving file is brought up to date: replaced whole (new mart, changed columns, a full
    publication, most of its rows changed), or patched: the days of ``write`` and ``remove``
    deleted and written again, or, for a mart published from its change log, the keys of
    ``patch`` (a query of key tuples)."""

    name: str
    partitioned: bool
    write: tuple[Key, ...]
    remove: tuple[Key, ...]
    replace_table: bool
    #: the key columns and the query of the keys whose rows are replaced (change-log marts)
    key_columns: tuple[str, ...] = ()
    patch: str | None = None
    #: rows the table update writes (all of them when it replaces the table)
    rows_written: int = 0
    #: the mart's latest build this publication holds (its mark in the next one)
    built_at: dt.datetime | None = None
    #: why a mart with a change log was digested instead (None: it was not, or it has no log)
    digested_because: str | None = None

    @property
    def days(self) -> tuple[dt.date, ...]:
        return tuple(sorted(k for k in {*self.write, *self.remove} if k is not None))


@dataclass(frozen=True)
class Previous:
    """The last publication, as its serving file holds it (all empty for none)."""

    marts: tuple[str, ...] = ()
    digests: Mapping[str, Mapping[Key, Digest]] = field(default_factory=dict)
    columns: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: each mart's build the last publication held (``MartPlan.built_at``)
    marks: Mapping[str, dt.datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Logs:
    """The build file's change logs (docs/incremental.md): per model, its builds, its key columns
    and its log's columns; and the time before which runs may have pruned log rows."""

    builds: Mapping[str, tuple[tuple[dt.datetime, bool], ...]]  # (run_at, full), oldest first
    keys: Mapping[str, tuple[str, ...]]
    columns: Mapping[str, frozenset[str]]
    pruned_before: dt.datetime | None

    @property
    def latest_run(self) -> dt.datetime | None:
        """The latest build of any model: the publisher's mark once it has read every log."""
        runs = [b[-1][0] for m, b in self.builds.items() if b and m != PUBLISHER]
        return max(runs) if runs else None

    def why_not(self, mart: str, mark: dt.datetime | None, partitioned: bool) -> str | None:
        """Why the mart's log cannot give its changes since ``mark`` (None: it can)."""
        if mart not in self.keys or "_content" not in self.columns.get(mart, ()):
            return "no change log"
        if partitioned and PARTITION_COLUMN not in self.columns[mart]:
            return f"its change log has no {PARTITION_COLUMN}"
        if not set(self.keys[mart]) <= self.columns[mart]:
            return "its change log lacks its key"
        if mark is None:
            return "no publication from its change log yet"
        since = [(run_at, full) for run_at, full in self.builds.get(mart, ()) if run_at > mark]
        if any(full for _, full in since):
            return "rebuilt in full since the last publication"
        if since and self.pruned_before is not None and since[0][0] < self.pruned_before:
            return "its change log was pruned since the last publication"
        return None


def read_logs(con, alias: str = "build") -> Logs:
    """The change logs of the attached build file ``alias`` (empty when it has none)."""
    tables = {
        name: set()
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = ? "
            "and schema_name = 'changes'",
            [alias],
        ).fetchall()
    }
    if "_runs" not in tables:
        return Logs({}, {}, {}, None)
    for table, column in con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = ? "
        "and schema_name = 'changes'",
        [alias],
    ).fetchall():
        tables[table].add(column)
    builds: dict[str, list[tuple[dt.datetime, bool]]] = {}
    for model, run_at, full in con.execute(
        f'select model, run_at, "full" from {alias}.changes._runs order by run_at, model'
    ).fetchall():
        builds.setdefault(model, []).append((run_at, bool(full)))
    keys = {}
    if "_keys" in tables:
        keys = {
            m: tuple(k)
            for m, k in con.execute(
                f"select model, key_columns from {alias}.changes._keys"
            ).fetchall()
            if k and m in tables
        }
    # the macro record_build deletes log rows older than every model's latest build
    latest = [b[-1][0] for b in builds.values()]
    return Logs(
        {m: tuple(b) for m, b in builds.items()},
        keys,
        {t: frozenset(c) for t, c in tables.items()},
        min(latest) if latest else None,
    )


def plan_partitions(
    current: Mapping[Key, Digest],
    previous: Mapping[Key, Digest],
    on_disk: Iterable[Key],
    changed_days: Iterable[dt.date] | None,
) -> tuple[tuple[Key, ...], tuple[Key, ...]]:
    """The partitions to (re)write and to remove, given the build's digests, the last
    publication's, and the partition files present. ``changed_days`` None rewrites everything.

    A partition is written when it is new, named in ``changed_days``, its digest changed, or its
    file is missing; removed when it was published or is on disk but is no longer
    in the build.
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
    return tuple(sorted(write, key=key_order)), tuple(sorted(remove, key=key_order))


def digests(
    con,
    name: str,
    columns: Sequence[str],
    partitioned: bool,
    days: Iterable[dt.date] | None = None,
) -> dict[Key, Digest]:
    """Row count and sum of row hashes per business day (only of ``days`` when given), or of the
    whole mart."""
    row_hash = f"hash({', '.join(quote(c) for c in columns)})::hugeint"
    source = f"build.marts.{quote(name)}"
    if partitioned:
        where = ""
        if days is not None:
            listed = ", ".join(f"{literal(d)}::date" for d in sorted(days))
            if not listed:
                return {}
            where = f" where {quote(PARTITION_COLUMN)} in ({listed})"
        result = con.execute(
            f"select {quote(PARTITION_COLUMN)}, count(*), coalesce(sum({row_hash}), 0) "
            f"from {source}{where} group by 1"
        ).fetchall()
        _check_days(name, result)
        return {day: (int(n), int(h)) for day, n, h in result}
    ((n, h),) = con.execute(
        f"select count(*), coalesce(sum({row_hash}), 0) from {source}"
    ).fetchall()
    return {None: (int(n), int(h))}


def row_counts(con, name: str, partitioned: bool) -> dict[Key, Digest]:
    """Row count per business day (or of the whole mart), without content hashes."""
    source = f"build.marts.{quote(name)}"
    if partitioned:
        result = con.execute(
            f"select {quote(PARTITION_COLUMN)}, count(*) from {source} group by 1"
        ).fetchall()
        _check_days(name, result)
        return {day: (int(n), None) for day, n in result}
    ((n,),) = con.execute(f"select count(*) from {source}").fetchall()
    return {None: (int(n), None)}


def logged_changes(
    con, name: str, key_columns: Sequence[str], partitioned: bool, mark: dt.datetime
) -> tuple[str, set[Key], int]:
    """The keys of the mart whose content changed since ``mark``, from its change log, kept in a
    temp table: returns a query of them, the partitions they were on or are on now, and how many
    rows of the build they have."""
    table = quote(f"_changed_{name}")
    keys = ", ".join(quote(c) for c in key_columns)
    day = quote(PARTITION_COLUMN) if partitioned else "cast(null as date)"
    con.execute(
        f"""
        create or replace temp table {table} as
        select distinct {keys}, {day} as _day from (
            select * exclude (run_at) from build.changes.{quote(name)}
            where run_at > ?
            group by all
            having count(*) % 2 = 1
        )
        """,
        [mark],
    )
    days = {d for (d,) in con.execute(f"select distinct _day from {table}").fetchall()}
    parts: set[Key] = (
        {d for d in days if d is not None} if partitioned else ({None} if days else set())
    )
    query = f"select distinct {keys} from {table}"
    (rows,) = con.execute(
        f"select count(*) from build.marts.{quote(name)} where ({keys}) in ({query})"
    ).fetchone()
    return query, parts, int(rows)


def plan_mart(
    con,
    name: str,
    columns: Sequence[str],
    served: tuple[tuple[str, str], ...],
    previous: Previous,
    logs: Logs,
    on_disk: Iterable[Key],
    changed_days: Sequence[dt.date] | None,
) -> tuple[MartPlan, dict[Key, Digest]]:
    """One mart's plan, from its change log where it can show every change since the last
    publication, else from its digests; with the partitions' digests the manifest keeps."""
    partitioned = PARTITION_COLUMN in columns
    same_columns = previous.columns.get(name) == served
    built = logs.builds.get(name)
    built_at = built[-1][0] if built else None
    why = None
    if built:
        why = logs.why_not(name, previous.marks.get(name), partitioned)
        if why is None and changed_days is None:
            why = "a full publication"
        elif why is None and not same_columns:
            why = "its columns changed"
    if built and why is None:
        return _plan_from_log(
            con, name, columns, partitioned, previous, logs, on_disk, changed_days
        )
    current = digests(con, name, columns, partitioned)
    write, remove = plan_partitions(
        current,
        previous.digests.get(name, {}) if same_columns else {},
        on_disk,
        changed_days if same_columns else None,
    )
    # a partitioned table most of whose rows changed is cheaper rebuilt than patched: deleting
    # and inserting every day of the 30-day lake's tables took 24.4 s, rebuilding them 17.5 s
    total = sum(n for n, _ in current.values())
    written = sum(current[k][0] for k in write if k in current)
    replace = (
        not same_columns
        or (not partitioned and bool(write))
        or (partitioned and written * 2 > total)
    )
    plan = MartPlan(
        name,
        partitioned,
        write,
        remove,
        replace,
        rows_written=total if replace else written,
        built_at=built_at,
        digested_because=why,
    )
    return plan, current


def _plan_from_log(
    con,
    name: str,
    columns: Sequence[str],
    partitioned: bool,
    previous: Previous,
    logs: Logs,
    on_disk: Iterable[Key],
    changed_days: Sequence[dt.date],
) -> tuple[MartPlan, dict[Key, Digest]]:
    key_columns = logs.keys[name]
    mark = previous.marks[name]
    built_at = logs.builds[name][-1][0]
    patch, parts, rows = None, set(), 0
    if built_at != mark:
        patch, parts, rows = logged_changes(con, name, key_columns, partitioned, mark)
    counts = row_counts(con, name, partitioned)
    disk, named = set(on_disk), set(changed_days)
    write = {k for k in counts if k in parts or k in named or k not in disk}
    before = previous.digests.get(name, {})
    remove = ({*before, *disk}) - set(counts)
    # the partitions' digests, which the settlement reports watch for changes: a partition the
    # log shows unchanged keeps the one it was published with; the others are hashed again (the
    # days the log names: the cost follows the change)
    again = {
        k for k in counts if k in write or before.get(k) is None or before[k][0] != counts[k][0]
    }
    if partitioned:
        fresh = digests(con, name, columns, partitioned, days=again)
    else:
        fresh = digests(con, name, columns, partitioned) if again else {}
    current = {k: fresh.get(k) or before[k] for k in counts}
    total = sum(n for n, _ in current.values())
    replace = rows * 2 > total
    plan = MartPlan(
        name,
        partitioned,
        tuple(sorted(write, key=key_order)),
        tuple(sorted(remove, key=key_order)),
        replace,
        key_columns=key_columns,
        patch=None if replace or not parts else patch,
        rows_written=total if replace else rows,
        built_at=built_at,
    )
    return plan, current


def _check_days(name: str, result) -> None:
    if any(row[0] is None for row in result):
        raise PublishError(
            f"mart {name} has rows without a {PARTITION_COLUMN}: a partitioned mart needs a "
            "business day on every row"
        )


def key_order(key: Key) -> dt.date:
    return dt.date.min if key is None else key


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"
