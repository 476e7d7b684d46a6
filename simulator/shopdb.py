"""The two shop databases: a bulk writer for SQLite files or MySQL/MariaDB URLs.

The tables are the shops' own (``simulator/shop_schemas.py``). Rows are written column-wise:
into SQLite through ADBC (Arrow batches, no Python loop per row); into MySQL/MariaDB through
SQLAlchemy executemany in chunks (a server is the slow side there anyway). Both take the rows a batch at a time
(``ShopTables.append``), so the simulator writes a day at a time.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from simulator.shop_schemas import split_table_prefix


def _sqlite_ddl(metadata: sa.MetaData) -> tuple[list[str], list[str]]:
    """(CREATE TABLE statements, CREATE INDEX statements): indexes are built after the bulk load."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    tables, indexes = [], []
    for table in metadata.sorted_tables:
        tables.append(str(CreateTable(table).compile(dialect=dialect)))
        indexes.extend(str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes)
    return tables, indexes


class SqliteTables:
    """A fresh SQLite file with the shop's schema, loaded a batch of rows at a time.

    Written beside the target and renamed over it by ``close()``, so a crash never leaves half a
    database; the indexes are built once, after the bulk load.
    """

    def __init__(self, path: Path, metadata: sa.MetaData) -> None:
        import adbc_driver_sqlite.dbapi as adbc

        self.path = path
        self.metadata = metadata
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(path.name + ".tmp")
        self.tmp.unlink(missing_ok=True)
        tables, self.indexes = _sqlite_ddl(metadata)
        with contextlib.closing(sqlite3.connect(self.tmp)) as con:
            for stmt in tables:
                con.execute(stmt)
            con.commit()
        self.con = adbc.connect(str(self.tmp), autocommit=True)
        self.cur = self.con.cursor()
        # a fresh file that is renamed into place only when complete: no journal needed
        self.cur.execute("pragma journal_mode = off")
        self.cur.execute("pragma synchronous = off")
        self.cur.execute("pragma cache_size = -65536")  # 64 MiB: appends touch the last pages only

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        columns = [c.name for c in self.metadata.tables[table].columns if c.name in frame.columns]
        self.cur.adbc_ingest(table, frame.select(columns).to_arrow(), mode="append")

    def close(self) -> None:
        self.cur.close()
        self.con.close()
        with contextlib.closing(sqlite3.connect(self.tmp)) as con:
            for stmt in self.indexes:
                con.execute(stmt)
            con.commit()
            con.execute("pragma journal_mode=wal")  # live mode writes while readers read
        self.tmp.replace(self.path)


class SqlAlchemyTables:
    """The shop's tables replaced in a MySQL/MariaDB (or any SQLAlchemy) database, then loaded."""

    def __init__(self, url: str | sa.URL, metadata: sa.MetaData, chunk_rows: int = 5000) -> None:
        self.engine = sa.create_engine(url)
        self.metadata = metadata
        self.chunk_rows = chunk_rows
        with self._begin() as con:
            metadata.drop_all(con)
            metadata.create_all(con)

    @contextlib.contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as con:
            # the server's own SQL mode (MariaDB's default is strict): every row names every NOT
            # NULL column the installers leave without a default, as the shops' own code does
            yield con

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        columns = [c.name for c in self.metadata.tables[table].columns if c.name in frame.columns]
        # untyped columns: the frames already hold the shop's own text/number forms
        # (naive local timestamps, zero dates), which typed DateTime binds would reject
        target = sa.table(table, *[sa.column(c) for c in columns])
        with self._begin() as con:
            for chunk in _chunks(frame.select(columns), self.chunk_rows):
                con.execute(target.insert(), chunk.to_dicts())

    def close(self) -> None:
        self.engine.dispose()


class ShopTables:
    """One shop's tables in its SQLite file and, when a URL is given, in a database server too.

    ``metadata`` makes the shop's tables under a prefix: ``prefix`` in the SQLite file, and in
    the server the URL's own ``?table_prefix=`` when it names one (the parameter the platform
    reads the shop with), else ``prefix`` too. Rows are appended by the table's unprefixed name.
    """

    def __init__(
        self,
        path: Path,
        metadata: Callable[[str], sa.MetaData],
        url: str | None = None,
        prefix: str = "",
    ) -> None:
        self.targets: list[tuple[SqliteTables | SqlAlchemyTables, str]] = [
            (SqliteTables(path, metadata(prefix)), prefix)
        ]
        if url:
            plain, server_prefix = split_table_prefix(url, prefix)
            self.targets.append((SqlAlchemyTables(plain, metadata(server_prefix)), server_prefix))

    def append(self, table: str, frame: pl.DataFrame) -> None:
        for target, prefix in self.targets:
            target.append(prefix + table, frame)

    def close(self) -> None:
        for target, _ in self.targets:
            target.close()


def _chunks(frame: pl.DataFrame, rows: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, rows):
        yield frame.slice(start, rows)
