"""Columnar extraction from the shop databases (any SQLAlchemy URL).

Every column is read as text (``CAST(... AS TEXT/CHAR)``), exactly as the source holds it, so a
zero date or a stray string never breaks the read: typing is the contract's job. SQLite files are
read through ADBC, MySQL/MariaDB through connectorx, both straight into Arrow; no Python loop
touches a row.

The table is asked for its columns first (``table_layout``): a column the contract needs that the
table lacks is an error naming the table, the column and the contract; a column it can do without
is read as null (an older version of the shop); and whether a time column holds unix seconds or a
DATETIME (acg-faka stores both, by version) is the table's answer, not the contract's.

Incremental tables are read by a window on their version column(s) (``updated_at``, or the later of
several), widened by an overlap so that rows committed late are not missed, plus every row whose
version cannot be placed in time (null, implausible, far future) so that nothing is ever lost;
rows already landed are dropped by the caller by content hash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from pipelines.lib.calendar import CST, day_start
from pipelines.lib.contracts import FUTURE_TOLERANCE, PLAUSIBLE_AFTER, Contract

NULL_MARK_CODE = 0xE000
NULL_MARK = chr(NULL_MARK_CODE)
#: the URL query parameter naming the shop's table prefix (acg-faka prefixes every table with
#: what was typed at install, ``acg_`` by default): ``mysql+pymysql://…/faka?table_prefix=acg_``
TABLE_PREFIX_PARAM = "table_prefix"


class SourceLayoutError(ValueError):
    """A shop table that cannot be read as its contract needs; the message names the database,
    the table, the column and the contract file."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one shop table stores its contract's columns, as the database describes it."""

    #: the table's name in the database (the contract's, after the URL's ``table_prefix``)
    table: str
    #: the contract's columns the table has (the others are read as null)
    present: frozenset[str]
    #: how the table's version column(s) hold time: ``epoch`` (unix seconds) or
    #: ``local_datetime`` (DATETIME / TIMESTAMP / text, naive Asia/Shanghai); None without one
    watermark_kind: str | None


def split_url(url: str) -> tuple[str, str]:
    """(the database URL without ``table_prefix``, the prefix: empty without one)."""
    parsed = sa.make_url(url)
    prefix = parsed.query.get(TABLE_PREFIX_PARAM, "")
    if isinstance(prefix, tuple):
        raise SourceLayoutError(f"{TABLE_PREFIX_PARAM} is given twice in {_describe(url)}")
    plain = parsed.difference_update_query([TABLE_PREFIX_PARAM])
    return plain.render_as_string(hide_password=False), prefix


def table_name(url: str, table: str) -> str:
    """A contract's table as the database names it (with the URL's ``table_prefix``)."""
    return split_url(url)[1] + table


def required_columns(contract: Contract) -> list[str]:
    """The columns a table must have: the non-nullable ones, the key and the version columns."""
    names = {c.name for c in contract.columns if not c.nullable}
    names |= set(contract.key) | set(contract.source.get("watermark") or [])
    return [c for c in contract.column_names if c in names]


def table_layout(contract: Contract, url: str) -> Layout:
    """Ask the database what ``contract``'s table holds (SQLAlchemy's inspector: PRAGMA
    table_info on SQLite, information_schema on MySQL/MariaDB)."""
    src = contract.source
    table = table_name(url, src["table"])
    where = f"{src['database']} database ({_describe(url)}), table {table}"
    engine = _engine(url)
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(table):
            similar = [t for t in inspector.get_table_names() if t.endswith(src["table"])]
            hint = (
                f"; the database has {', '.join(similar)}: give the URL the shop's table prefix "
                f"(?{TABLE_PREFIX_PARAM}=…)"
                if similar
                else ""
            )
            raise SourceLayoutError(f"{where}: the table is missing ({contract.path.name}){hint}")
        types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
    finally:
        engine.dispose()
    for name in required_columns(contract):
        if name not in types:
            raise SourceLayoutError(
                f"{where}: column {name} is missing; {contract.path.name} requires it "
                "(a key, version or non-nullable column); the table has " + ", ".join(sorted(types))
            )
    kinds = {
        "epoch" if isinstance(types[w], sa.Integer) else "local_datetime"
        for w in src.get("watermark") or []
    }
    if len(kinds) > 1:
        raise SourceLayoutError(
            f"{where}: the version columns {', '.join(src['watermark'])} mix unix seconds and "
            f"DATETIME ({contract.path.name})"
        )
    present = frozenset(c for c in contract.column_names if c in types)
    return Layout(table, present, kinds.pop() if kinds else None)


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(split_url(url)[0])
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or not Path(path).exists():
            raise FileNotFoundError(f"shop database not found: {path}")
        # checked first: SQLite would create a missing file
        return sa.create_engine(f"sqlite:///{path}")
    return sa.create_engine(parsed)


def _describe(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


@dataclasses.dataclass(frozen=True)
class Window:
    lower: dt.datetime  # UTC, inclusive
    upper: dt.datetime  # UTC, exclusive

    def describe(self) -> str:
        return f"[{self.lower.astimezone(CST):%Y-%m-%d %H:%M:%S}, {self.upper.astimezone(CST):%Y-%m-%d %H:%M:%S}) CST"


def day_window(day: dt.date, overlap_minutes: int) -> Window:
    start = day_start(day)
    return Window(start - dt.timedelta(minutes=overlap_minutes), start + dt.timedelta(days=1))


def _quote(name: str, dialect: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _literal(moment: dt.datetime, kind: str) -> str:
    if kind == "epoch":
        return str(int(moment.timestamp()))
    return "'" + moment.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S") + "'"


def _version_expr(watermark: list[str], kind: str, dialect: str) -> str:
    """A row's version: its one version column, or the latest of several."""
    if len(watermark) == 1:
        return _quote(watermark[0], dialect)
    empty = "0" if kind == "epoch" else "''"
    parts = ", ".join(f"coalesce({_quote(w, dialect)}, {empty})" for w in watermark)
    return f"greatest({parts})" if dialect == "mysql" else f"max({parts})"


def build_query(
    contract: Contract,
    dialect: str,
    window: Window | None,
    reference: dt.datetime,
    layout: Layout,
) -> str:
    """The extraction query; ``reference`` is the extraction time (a version later than it plus
    a day is a broken clock, read in every window so that it is quarantined, never lost)."""
    src = contract.source
    q = lambda n: _quote(n, dialect)  # noqa: E731
    text = "char" if dialect == "mysql" else "text"
    value = {c: q(c) if c in layout.present else "null" for c in contract.column_names}
    if dialect == "mysql":
        cols = [f"cast({value[c]} as char) as {q(c)}" for c in contract.column_names]
    else:
        # ADBC types a column from its first rows: a column that starts with NULLs would come
        # back as integers, so NULL travels as a private-use character and is restored after
        cols = [
            f"coalesce(cast({value[c]} as text), char({NULL_MARK_CODE})) as {q(c)}"
            for c in contract.column_names
        ]
    watermark = src.get("watermark") or []
    kind = layout.watermark_kind or "local_datetime"
    prefilter = where = ""
    if not watermark or window is None or src.get("full_scan"):
        version = "null"
    else:
        version = _version_expr(watermark, kind, dialect)
        lo, hi = _literal(window.lower, kind), _literal(window.upper, kind)
        plausible = _literal(PLAUSIBLE_AFTER, kind)
        future = _literal(reference + FUTURE_TOLERANCE, kind)
        # one version column: filter on the column itself, so that an index on it is used
        v = q(watermark[0]) if len(watermark) == 1 else "_v"
        condition = (
            f"({v} >= {lo} and {v} < {hi}) or {v} is null or {v} < {plausible} or {v} >= {future}"
        )
        if len(watermark) == 1:
            prefilter = f" where {condition}"
        else:
            where = f" where {condition}"
    inner = f"select {', '.join(cols)}, {version} as _v from {q(layout.table)}{prefilter}"
    # the version travels as text too (a MySQL zero date has no other faithful form)
    outer = ", ".join(q(c) for c in contract.column_names)
    return f"select {outer}, cast(_v as {text}) as _v from ({inner}) as t{where}"


def reference_keys(contract: Contract, url: str) -> dict[str, pl.Series]:
    """For each column that refers to another table, the keys that table holds (read once)."""
    out = {}
    for column, ref in (contract.source.get("references") or {}).items():
        q = lambda n: _quote(n, dialect_of(url))  # noqa: E731
        cast = "char" if dialect_of(url) == "mysql" else "text"
        table = q(table_name(url, ref["table"]))
        keys = read_table(url, f"select cast({q(ref['column'])} as {cast}) as k from {table}")
        out[column] = keys["k"]
    return out


def version_range(
    contract: Contract, url: str, reference: dt.datetime
) -> tuple[dt.date, dt.date] | None:
    """First and last business day that hold a plausible version of the table's rows."""
    src = contract.source
    if not src.get("watermark") or src.get("full_scan"):
        return None
    dialect = dialect_of(url)
    kind = table_layout(contract, url).watermark_kind or "local_datetime"
    lo = _literal(PLAUSIBLE_AFTER, kind)
    hi = _literal(reference + FUTURE_TOLERANCE, kind)
    text = "char" if dialect == "mysql" else "text"
    version = _version_expr(src["watermark"], kind, dialect)
    frame = read_table(
        url,
        f"select cast(min(_v) as {text}) as lo, cast(max(_v) as {text}) as hi from "
        f"(select {version} as _v from {_quote(table_name(url, src['table']), dialect)}) as r "
        f"where _v >= {lo} and _v < {hi}",
    )
    first, last = frame.row(0)
    if first is None:
        return None

    def day(value: str) -> dt.date:
        if kind == "epoch":
            return dt.datetime.fromtimestamp(int(float(value)), CST).date()
        return dt.date.fromisoformat(value[:10])

    return day(first), day(last)


def window_versions(contract: Contract, url: str, window: Window) -> tuple[str | None, int]:
    """The newest version inside ``window`` and how many rows it holds, as text: a cheap probe
    of whether a table changed since it was last landed (one indexed range scan)."""
    src = contract.source
    dialect = dialect_of(url)
    kind = table_layout(contract, url).watermark_kind or "local_datetime"
    text = "char" if dialect == "mysql" else "text"
    version = _version_expr(src["watermark"], kind, dialect)
    lo, hi = _literal(window.lower, kind), _literal(window.upper, kind)
    column = _quote(src["watermark"][0], dialect) if len(src["watermark"]) == 1 else "_v"
    frame = read_table(
        url,
        f"select cast(max(_v) as {text}) as v, count(*) as n from "
        f"(select {version} as _v from {_quote(table_name(url, src['table']), dialect)}"
        + (f" where {column} >= {lo} and {column} < {hi}" if column != "_v" else "")
        + ") as r"
        + (f" where _v >= {lo} and _v < {hi}" if column == "_v" else ""),
    )
    newest, rows = frame.row(0)
    return newest, int(rows or 0)


def read_table(url: str, query: str) -> pl.DataFrame:
    """Run ``query`` on the database at ``url`` and return the result as text columns."""
    engine = sa.make_url(split_url(url)[0])
    if engine.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi as adbc

        path = engine.database
        if not path or not Path(path).exists():
            raise FileNotFoundError(f"shop database not found: {path}")
        with adbc.connect(path) as con, con.cursor() as cur:
            cur.execute(query)
            table = cur.fetch_arrow_table()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(
            pl.when(pl.col(c) == NULL_MARK).then(None).otherwise(pl.col(c)).alias(c)
            for c in frame.columns
            if frame.schema[c] == pl.String
        )
    elif engine.get_backend_name() == "mysql":
        import connectorx as cx

        # connectorx takes a plain mysql:// URL (driver and driver options are its own)
        cx_url = engine.set(drivername="mysql", query={}).render_as_string(hide_password=False)
        frame = pl.from_arrow(cx.read_sql(cx_url, query, return_type="arrow"))
    else:
        raise ValueError(
            f"unsupported shop database {engine.get_backend_name()!r}: use SQLite or MySQL/MariaDB"
        )
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.all().cast(pl.String))


def dialect_of(url: str) -> str:
    return sa.make_url(url).get_backend_name()
