"""Columnar extraction from the shop databases (any SQLAlchemy URL).

Every column is read as text (``CAST(... AS TEXT/CHAR)``), exactly as the source holds it, so a
zero date or a stray string never breaks the read: typing is the contract's job. SQLite files are
read through ADBC, MySQL/MariaDB through connectorx, both straight into Arrow; no Python loop
touches a row.

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
    contract: Contract, dialect: str, window: Window | None, reference: dt.datetime
) -> str:
    """The extraction query; ``reference`` is the extraction time (a version later than it plus
    a day is a broken clock, read in every window so that it is quarantined, never lost)."""
    src = contract.source
    q = lambda n: _quote(n, dialect)  # noqa: E731
    text = "char" if dialect == "mysql" else "text"
    if dialect == "mysql":
        cols = [f"cast({q(c)} as char) as {q(c)}" for c in contract.column_names]
    else:
        # ADBC types a column from its first rows: a column that starts with NULLs would come
        # back as integers, so NULL travels as a private-use character and is restored after
        cols = [
            f"coalesce(cast({q(c)} as text), char({NULL_MARK_CODE})) as {q(c)}"
            for c in contract.column_names
        ]
    watermark = src.get("watermark") or []
    kind = src.get("watermark_kind", "local_datetime")
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
    inner = f"select {', '.join(cols)}, {version} as _v from {q(src['table'])}{prefilter}"
    # the version travels as text too (a MySQL zero date has no other faithful form)
    outer = ", ".join(q(c) for c in contract.column_names)
    return f"select {outer}, cast(_v as {text}) as _v from ({inner}) as t{where}"


def reference_keys(contract: Contract, url: str) -> dict[str, pl.Series]:
    """For each column that refers to another table, the keys that table holds (read once)."""
    out = {}
    for column, ref in (contract.source.get("references") or {}).items():
        q = lambda n: _quote(n, dialect_of(url))  # noqa: E731
        cast = "char" if dialect_of(url) == "mysql" else "text"
        keys = read_table(
            url, f"select cast({q(ref['column'])} as {cast}) as k from {q(ref['table'])}"
        )
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
    kind = src.get("watermark_kind", "local_datetime")
    lo = _literal(PLAUSIBLE_AFTER, kind)
    hi = _literal(reference + FUTURE_TOLERANCE, kind)
    text = "char" if dialect == "mysql" else "text"
    version = _version_expr(src["watermark"], kind, dialect)
    frame = read_table(
        url,
        f"select cast(min(_v) as {text}) as lo, cast(max(_v) as {text}) as hi from "
        f"(select {version} as _v from {_quote(src['table'], dialect)}) as r "
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
    kind = src.get("watermark_kind", "local_datetime")
    text = "char" if dialect == "mysql" else "text"
    version = _version_expr(src["watermark"], kind, dialect)
    lo, hi = _literal(window.lower, kind), _literal(window.upper, kind)
    column = _quote(src["watermark"][0], dialect) if len(src["watermark"]) == 1 else "_v"
    frame = read_table(
        url,
        f"select cast(max(_v) as {text}) as v, count(*) as n from "
        f"(select {version} as _v from {_quote(src['table'], dialect)}"
        + (f" where {column} >= {lo} and {column} < {hi}" if column != "_v" else "")
        + ") as r"
        + (f" where _v >= {lo} and _v < {hi}" if column == "_v" else ""),
    )
    newest, rows = frame.row(0)
    return newest, int(rows or 0)


def read_table(url: str, query: str) -> pl.DataFrame:
    """Run ``query`` on the database at ``url`` and return the result as text columns."""
    engine = sa.make_url(url)
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
