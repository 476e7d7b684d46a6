"""What a serving file says about the publication it holds, for readers and for the next
publication (``pipelines.lib.publish``): tables ``_publication`` (one row per mart: its rows, the
days rewritten, the mart's build it holds), ``_publication_partitions`` (each partition's content
digest: row count and sum of row hashes) and
``_publication_storage`` (the size the file had when it was last written fresh: the bound a
patched copy is compacted at)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.publish_plan import Digest, Key, MartPlan, Previous, key_order
from pipelines.lib.publish_plan import literal as _lit

#: a patched serving file is compacted when it is larger than this many times the size of a fresh
#: file of as many rows
COMPACT_ABOVE = 1.3


@dataclass(frozen=True)
class Storage:
    """The size of the serving file when it was last written fresh, and the rows it held: what a
    patched copy is compared with (None until a publication patches a fresh file and measures
    it)."""

    fresh_bytes: int | None = None
    fresh_rows: int | None = None

    def outgrown(self, size: int, rows: int) -> bool:
        """Whether a file of ``size`` bytes holding ``rows`` rows is past ``COMPACT_ABOVE`` times
        what a fresh file of as many rows would take (the fresh file's bytes per row)."""
        if not self.fresh_bytes or not self.fresh_rows:
            return False
        return size > COMPACT_ABOVE * self.fresh_bytes * max(rows, 1) / self.fresh_rows


def read_previous(con, alias: str, path: Path) -> tuple[Previous, Storage]:
    """The last publication, as the serving file ``path`` (attached as ``alias``) holds it: its
    marts, its partition digests, its tables' columns and each mart's build (all empty for a
    fresh file); and the storage figures a patched copy of it is compared with."""
    tables = {
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main'",
            [alias],
        ).fetchall()
    }
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
    marts: list[str] = []
    marks: dict[str, dt.datetime] = {}
    rows = 0
    if "_publication" in tables:
        built = "built_at" if any(c == "built_at" for c, _ in columns["_publication"]) else "null"
        for mart, n, built_at in con.execute(
            f"select mart, row_count, {built} from {alias}.main._publication"
        ).fetchall():
            marts.append(mart)
            rows += int(n)
            if built_at is not None:
                marks[mart] = built_at
    digests: dict[str, dict[Key, Digest]] = {}
    if "_publication_partitions" in tables:
        for mart, day, n, h in con.execute(
            "select mart, business_date, row_count, content_hash "
            f"from {alias}.main._publication_partitions"
        ).fetchall():
            digests.setdefault(mart, {})[day] = (int(n), None if h is None else int(h))
    storage = Storage(path.stat().st_size, rows)  # a file written fresh: measured now
    if "_publication_storage" in tables:
        row = con.execute(
            f"select fresh_bytes, fresh_rows from {alias}.main._publication_storage"
        ).fetchone()
        if row and row[0] is not None:
            storage = Storage(int(row[0]), int(row[1]))
    previous = Previous(tuple(marts), digests, {t: tuple(c) for t, c in columns.items()}, marks)
    return previous, storage


def write_manifest(
    con, run_id: str, plans: Sequence[MartPlan], rows, digests, storage: Storage
) -> None:
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
            changed_days date[],
            built_at timestamptz
        )
        """
    )
    published_at = dt.datetime.now(dt.UTC)
    con.executemany(
        "insert into wh.main._publication values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                run_id,
                published_at,
                p.name,
                rows[p.name],
                p.partitioned,
                len(digests[p.name]) if p.partitioned else 1,
                bool(p.write or p.remove or p.replace_table or p.patch),
                list(p.days) if p.partitioned else None,
                p.built_at,
            ]
            for p in plans
        ],
    )
    con.execute(
        "create or replace table wh.main._publication_storage "
        "(fresh_bytes bigint, fresh_rows bigint)"
    )
    con.execute(
        "insert into wh.main._publication_storage values (?, ?)",
        [storage.fresh_bytes, storage.fresh_rows],
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
            for key, (n, h) in sorted(parts.items(), key=lambda kv: key_order(kv[0]))
        ],
    )
    for table, text in MANIFEST_DOCS.items():
        con.execute(f"comment on table wh.main.{table} is {_lit(text)}")


MANIFEST_DOCS = {
    "_publication": "The publication this file holds: one row per mart, with the run that "
    "published it, its rows, the business days this publication rewrote, and the build of the "
    "mart it holds (built_at: where the next publication reads the mart's change log from).",
    "_publication_partitions": "Content digest of every published partition (row count and sum "
    "of row hashes; business_date null for an unpartitioned mart): how the next publication finds "
    "the partitions that changed, and the settlement reports the ones they are built from.",
    "_publication_storage": "The size of this file when it was last written fresh and the rows "
    "it held (null while it is fresh): a patched copy larger than 1.3 times that per row is "
    "compacted.",
}
