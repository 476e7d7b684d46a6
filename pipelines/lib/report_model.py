"""What a settlement report is, before it becomes a file: ``Report`` with its ``Column`` and
``Measure``, the values' kinds and their text, the summary per group with its totals, and the
atomic write every file goes through. The writers (``report_files`` for CSV and all three,
``report_xlsx``, ``report_pdf``) share it; the rules they keep are in ``report_files``."""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from pipelines.lib.calendar import BUSINESS_TZ, CST

Kind = Literal["text", "int", "fen", "date", "datetime"]

SUMMARY_SHEET = "汇总"
DETAIL_SHEET = "明细"
EXCEPTIONS_SHEET = "异常"
TOTAL_LABEL = "合计"
NO_EXCEPTIONS = "无异常 / no exceptions"

_KINDS = ("text", "int", "fen", "date", "datetime")
DATETIME_TEXT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Column:
    """One column of a table in the files: a frame column, its Chinese header and how it reads."""

    key: str  # column name in the polars frame
    header: str  # Chinese header written in the file, e.g. "收款金额（元）"
    kind: Kind = "text"  # "fen": an integer number of fen (1/100 yuan) shown as yuan, two decimals


@dataclass(frozen=True)
class Measure:
    """One figure of the summary table: a SUMIFS (or COUNTIFS when detail_key is None) over the
    detail sheet, per group."""

    header: str
    detail_key: str | None  # detail column summed; None = count of detail rows of the group
    kind: Kind = "fen"  # "fen" or "int" (a count is "int")


@dataclass(frozen=True)
class Report:
    """Everything one settlement report shows; the writers below turn it into files."""

    title: str  # e.g. "支付宝 渠道对账单"
    subtitle: str  # one English line, e.g. "Alipay channel reconciliation · 2026-10-01 · v2"
    facts: list[tuple[str, str]]  # header block: [("渠道", "支付宝 alipay"), ("版本", "v2")]
    detail_columns: list[Column]
    detail: pl.DataFrame  # the XLSX detail sheet rows (hundreds to a few thousand)
    group_key: str  # detail column the summary groups by (e.g. "account_name", "sku_code")
    group_header: str  # its Chinese header in the summary
    measures: list[Measure]  # summary figures per group, then a totals row
    csv_columns: list[Column]
    csv_rows: pl.DataFrame  # the full line-level CSV (400,000+ rows)
    exceptions_columns: list[Column] = field(default_factory=list)
    exceptions: pl.DataFrame | None = None  # optional sheet 异常, and the first rows on the PDF
    notes: list[str] = field(default_factory=list)  # lines under the summary (XLSX and PDF)
    signatures: tuple[str, ...] = ("编制", "复核", "审批")  # signature lines (PDF, summary sheet)
    as_of: dt.datetime = dt.datetime(2000, 1, 1)  # document metadata time (data-derived; not now)


# --------------------------------------------------------------------------------------------
# values


def yuan_text(fen: pl.Expr) -> pl.Expr:
    """Integer fen → yuan text with exactly two decimals (``-12345`` → ``-123.45``, ``5`` →
    ``0.05``), built with integer division and modulo so no float ever rounds a cent."""
    mag = fen.cast(pl.Int64).abs()
    text = pl.concat_str(
        [(mag // 100).cast(pl.String), pl.lit("."), (mag % 100).cast(pl.String).str.zfill(2)]
    )
    return pl.when(fen < 0).then(pl.lit("-") + text).otherwise(text)


def yuan_grouped(fen: int) -> str:
    """Integer fen → yuan with thousands separators, as printed on the PDF (``123456`` →
    ``1,234.56``)."""
    mag = abs(fen)
    return f"{'-' if fen < 0 else ''}{mag // 100:,}.{mag % 100:02d}"


def display_width(text: str) -> int:
    """Columns the text takes in a fixed-width view: CJK (wide and full-width) characters two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def beijing(moment: dt.datetime) -> dt.datetime:
    """A naive Beijing wall-clock time (tz-aware values converted, naive ones taken as they are)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(CST).replace(tzinfo=None)


def _local(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A datetime column as naive Beijing time (tz-aware columns converted to Asia/Shanghai)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return expr.dt.convert_time_zone(BUSINESS_TZ).dt.replace_time_zone(None)
    return expr


def typed(col: Column, dtype: pl.DataType, what: str) -> pl.Expr:
    """The frame column as its kind needs it: text as String, int/fen as Int64, date as Date,
    datetime as naive Beijing Datetime. A dtype that cannot hold the kind is an error, not a
    guess (a float fen column would already have lost the exactness the files promise)."""
    expr = pl.col(col.key)
    if col.kind == "text":
        return expr.cast(pl.String)
    if col.kind in ("int", "fen"):
        if not dtype.is_integer():
            raise TypeError(f"{what}: column {col.key!r} is {col.kind} but has dtype {dtype}")
        return expr.cast(pl.Int64)
    if col.kind == "date":
        if dtype == pl.Date:
            return expr
        if isinstance(dtype, pl.Datetime):
            return _local(expr, dtype).dt.date()
        raise TypeError(f"{what}: column {col.key!r} is a date but has dtype {dtype}")
    if col.kind == "datetime":
        if isinstance(dtype, pl.Datetime):
            return _local(expr, dtype)
        raise TypeError(f"{what}: column {col.key!r} is a datetime but has dtype {dtype}")
    raise ValueError(f"{what}: column {col.key!r} has unknown kind {col.kind!r}")


def check_columns(columns: Sequence[Column], what: str) -> None:
    for col in columns:
        if col.kind not in _KINDS:
            raise ValueError(f"{what}: column {col.key!r} has unknown kind {col.kind!r}")
    for attr in ("key", "header"):
        names = [getattr(c, attr) for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"{what}: the column {attr}s {dupes} appear more than once")


def normalise(frame: pl.DataFrame, columns: Sequence[Column], what: str) -> pl.DataFrame:
    """The listed columns of the frame, in order, typed by their kinds (``typed``)."""
    check_columns(columns, what)
    missing = [c.key for c in columns if c.key not in frame.columns]
    if missing:
        raise KeyError(f"{what}: no column {missing} in the frame (it has {frame.columns})")
    return frame.select([typed(c, frame.schema[c.key], what) for c in columns])


def cell_text(kind: Kind, value: Any) -> str:
    """A value as the PDF prints it."""
    if value is None:
        return ""
    if kind == "fen":
        return yuan_grouped(value)
    if kind == "int":
        return f"{value:,}"
    if kind == "datetime":
        return value.strftime(DATETIME_TEXT)
    if kind == "date":
        return value.isoformat()
    return str(value)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside ``path`` to write to; renamed over ``path`` once the write succeeded,
    removed when it failed. The temp name is hidden (leading dot) and unique per writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as written:  # on disk before it takes the name
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# the summary


def check_report(report: Report) -> None:
    """The summary's inputs make sense: the group and measure columns are detail columns of the
    right kinds, headers are unique, and no group key is missing (a blank criterion cell does not
    match blank cells in SUMIFS) or spelled like the totals row."""
    kinds = {c.key: c.kind for c in report.detail_columns}
    if report.group_key not in kinds:
        raise KeyError(f"group_key {report.group_key!r} is not one of the detail columns")
    if kinds[report.group_key] == "fen":
        raise ValueError(f"group_key {report.group_key!r} is an amount (fen): group by a key")
    if not report.measures:
        raise ValueError("a report needs at least one measure")
    if report.exceptions is not None and report.exceptions.height and not report.exceptions_columns:
        raise ValueError("exceptions are given without exceptions_columns to show them")
    headers = [report.group_header, *(m.header for m in report.measures)]
    if len(set(headers)) != len(headers) or report.group_key in headers[1:]:
        raise ValueError(f"summary headers must be unique and differ from group_key: {headers}")
    for m in report.measures:
        if m.kind not in ("fen", "int"):
            raise ValueError(f"measure {m.header!r}: kind must be 'fen' or 'int', not {m.kind!r}")
        if m.detail_key is None:
            if m.kind != "int":
                raise ValueError(f"measure {m.header!r} counts rows: its kind must be 'int'")
        elif kinds.get(m.detail_key) != m.kind:
            raise ValueError(
                f"measure {m.header!r} sums {m.detail_key!r}, which must be a detail column of "
                f"kind {m.kind!r} (it is {kinds.get(m.detail_key)!r})"
            )


def summary_rows(report: Report, detail: pl.DataFrame) -> pl.DataFrame:
    """Group rows (sorted by key) and then the totals row (null key): integer fen / integers."""
    key = report.group_key
    if detail.get_column(key).null_count():
        raise ValueError(f"group_key {key!r} has missing values in the detail")
    if detail.schema[key] == pl.String and (detail.get_column(key) == TOTAL_LABEL).any():
        raise ValueError(f"a {key!r} value is {TOTAL_LABEL!r}, the totals row's label")
    aggs = [
        (pl.col(m.detail_key).sum() if m.detail_key else pl.len()).cast(pl.Int64).alias(m.header)
        for m in report.measures
    ]
    groups = detail.group_by(key).agg(aggs).sort(key)
    totals = groups.select(
        pl.lit(None, dtype=groups.schema[key]).alias(key),
        *(pl.col(m.header).sum().cast(pl.Int64) for m in report.measures),
    )
    return pl.concat([groups, totals])


def summary_table(report: Report) -> pl.DataFrame:
    """The summary as plain integers, exactly what the XLSX formulas compute: one row per
    distinct ``group_key`` value (sorted), then the totals row, whose key is null. Columns:
    ``group_key`` (the detail's dtype) and one Int64 column per measure header (fen measures in
    fen, counts and int measures as they are). For callers' tie-out."""
    check_report(report)
    return summary_rows(report, normalise(report.detail, report.detail_columns, "detail"))
