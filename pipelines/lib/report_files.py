"""Settlement report files: one ``Report`` written as CSV, XLSX and PDF, byte for byte reproducible.

Finance downloads these files and signs them, so the same report must give the same bytes every
time it is written (a re-run that changed nothing changes no file, and a signed copy can be
compared with the one on disk), and every figure must be exact to the fen:

* amounts travel as integer fen (1/100 yuan) and become yuan text only by integer division and
  modulo (CSV, PDF) or as ``fen / 100`` numbers formatted ``#,##0.00`` (XLSX: exact to the cent
  once formatted; sums are computed from the integers, never from the floats);
* no clock enters a file: the XLSX core properties and the PDF info dictionary carry
  ``Report.as_of`` (a time the caller derives from the data), the XLSX zip members carry
  xlsxwriter's fixed 1980 stamp, and reportlab runs in invariant mode;
* every file is written to a temp file beside its target and renamed into place, so the final
  name never holds a half-written file.

The files:

``CSV``   every line (``csv_rows``, hundreds of thousands of rows: one vectorised polars write),
          UTF-8 with a BOM so that Excel opens the Chinese correctly, LF line ends. Text cells are
          neutralised against formula injection (OWASP "CSV Injection"): one that starts with
          ``= + - @``, tab, carriage return, a full-width ``＝ ＋ － ＠`` (or ``'`` itself) gets a
          leading ``'`` and is quoted (``neutralise_formula``; the value is the cell without that
          ``'``); amounts, counts, dates and times are written as they are (a negative amount
          stays ``-12.34``), decided by the column's kind, never by looking at the values.
``XLSX``  sheet 汇总 (title, facts, the summary as live SUMIFS/COUNTIFS formulas over the detail
          with their values cached for viewers that do not recalculate, notes, signature lines),
          sheet 明细 (the detail rows and a totals row) and, when given, sheet 异常 (exceptions).
          Text is always written as a string cell (``write_string``), so ``=...`` in the data is
          shown as text and never becomes a formula; the only formulas are the ones written here.
``PDF``   one or two A4 pages for signing: title, facts, the summary (the largest groups when
          there are many), notes, the first exceptions and the signature block, in an embedded
          CJK font (Debian's fonts-wqy-zenhei).

Times: naive values are taken as Beijing wall-clock time (as the shops record them); tz-aware
values are converted to Asia/Shanghai first.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from pipelines.lib.calendar import BUSINESS_TZ, CST
from pipelines.lib.csv_cells import csv_field, csv_text

Kind = Literal["text", "int", "fen", "date", "datetime"]

SUMMARY_SHEET = "汇总"
DETAIL_SHEET = "明细"
EXCEPTIONS_SHEET = "异常"
TOTAL_LABEL = "合计"
NO_EXCEPTIONS = "无异常 / no exceptions"
FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
FONT_NAME = "WenQuanYiZenHei"
FONT_PACKAGE = "fonts-wqy-zenhei"
PDF_TOP_GROUPS = 20  # the PDF shows at most this many groups (then one "其他 N 项" row)
PDF_EXCEPTION_ROWS = 15  # and at most this many exceptions
_CELL_PAD = 3  # points of padding left and right in the PDF tables' cells

_KINDS = ("text", "int", "fen", "date", "datetime")
_DATETIME_TEXT = "%Y-%m-%d %H:%M:%S"


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


def _display_width(text: str) -> int:
    """Columns the text takes in a fixed-width view: CJK (wide and full-width) characters two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _beijing(moment: dt.datetime) -> dt.datetime:
    """A naive Beijing wall-clock time (tz-aware values converted, naive ones taken as they are)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(CST).replace(tzinfo=None)


def _local(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A datetime column as naive Beijing time (tz-aware columns converted to Asia/Shanghai)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return expr.dt.convert_time_zone(BUSINESS_TZ).dt.replace_time_zone(None)
    return expr


def _typed(col: Column, dtype: pl.DataType, what: str) -> pl.Expr:
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


def _check_columns(columns: Sequence[Column], what: str) -> None:
    for col in columns:
        if col.kind not in _KINDS:
            raise ValueError(f"{what}: column {col.key!r} has unknown kind {col.kind!r}")
    for attr in ("key", "header"):
        names = [getattr(c, attr) for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"{what}: the column {attr}s {dupes} appear more than once")


def _normalise(frame: pl.DataFrame, columns: Sequence[Column], what: str) -> pl.DataFrame:
    """The listed columns of the frame, in order, typed by their kinds (``_typed``)."""
    _check_columns(columns, what)
    missing = [c.key for c in columns if c.key not in frame.columns]
    if missing:
        raise KeyError(f"{what}: no column {missing} in the frame (it has {frame.columns})")
    return frame.select([_typed(c, frame.schema[c.key], what) for c in columns])


def _cell_text(kind: Kind, value: Any) -> str:
    """A value as the PDF prints it."""
    if value is None:
        return ""
    if kind == "fen":
        return yuan_grouped(value)
    if kind == "int":
        return f"{value:,}"
    if kind == "datetime":
        return value.strftime(_DATETIME_TEXT)
    if kind == "date":
        return value.isoformat()
    return str(value)


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
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


def _check_report(report: Report) -> None:
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


def _summary(report: Report, detail: pl.DataFrame) -> pl.DataFrame:
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
    _check_report(report)
    return _summary(report, _normalise(report.detail, report.detail_columns, "detail"))


# --------------------------------------------------------------------------------------------
# CSV


def _csv_expr(col: Column) -> pl.Expr:
    """One CSV column by its kind: text neutralised and quoted (``csv_cells.csv_text``); amounts, counts,
    dates and times as plain numbers and ISO text, which need no quotes (a negative amount stays
    ``-12.34``, a number to a spreadsheet)."""
    expr = pl.col(col.key)
    if col.kind == "text":
        expr = csv_text(expr)
    elif col.kind == "fen":
        expr = yuan_text(expr)
    elif col.kind == "date":
        expr = expr.dt.strftime("%Y-%m-%d")
    elif col.kind == "datetime":
        expr = expr.dt.strftime(_DATETIME_TEXT)
    return expr.alias(csv_field(col.header))


def write_csv(report: Report, path: Path) -> None:
    """The line-level CSV: UTF-8 with BOM, Chinese headers, yuan as exact two-decimal text,
    ISO dates, ``YYYY-MM-DD HH:MM:SS`` Beijing times, LF line ends. Text cells are neutralised
    against formula injection and quoted where needed (``csv_cells.csv_text``); polars writes the fields
    as they are (``quote_style="never"``: every field that needs quotes already has them). One
    vectorised polars pass (500,000 rows take well under a second)."""
    _check_columns(report.csv_columns, "csv")
    missing = [c.key for c in report.csv_columns if c.key not in report.csv_rows.columns]
    if missing:
        raise KeyError(f"csv: no column {missing} in the frame (it has {report.csv_rows.columns})")
    schema = report.csv_rows.schema
    out = (
        report.csv_rows.lazy()
        .select([_typed(c, schema[c.key], "csv") for c in report.csv_columns])
        .select([_csv_expr(c) for c in report.csv_columns])
        .collect()
    )
    with _atomic(path) as tmp:
        out.write_csv(tmp, include_bom=True, line_terminator="\n", quote_style="never")


# --------------------------------------------------------------------------------------------
# XLSX

_MONEY = "#,##0.00"
_INT = "#,##0"
_MAX_WIDTH = 50


@dataclass(frozen=True)
class _Formats:
    title: Format
    subtitle: Format
    label: Format
    header: Format
    cells: dict[str, Format]  # per kind
    total_label: Format
    totals: dict[str, Format]  # per kind ("int", "fen")
    note: Format
    signature: Format

    @classmethod
    def of(cls, wb: xlsxwriter.Workbook) -> _Formats:
        numbers = {"text": "@", "int": _INT, "fen": _MONEY}
        numbers |= {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss"}
        top = {"bold": True, "top": 1, "bottom": 6}
        return cls(
            title=wb.add_format({"bold": True, "font_size": 16}),
            subtitle=wb.add_format({"italic": True, "font_color": "#595959"}),
            label=wb.add_format({"bold": True, "font_color": "#404040"}),
            header=wb.add_format(
                {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True}
                | {"align": "center", "valign": "vcenter"}
            ),
            cells={k: wb.add_format({"num_format": v}) for k, v in numbers.items()},
            total_label=wb.add_format(top),
            totals={k: wb.add_format(top | {"num_format": numbers[k]}) for k in ("int", "fen")},
            note=wb.add_format({"font_color": "#404040"}),
            signature=wb.add_format({"valign": "bottom"}),
        )


def _write_cell(ws: Worksheet, row: int, col: int, kind: Kind, value: Any, fmts: _Formats) -> None:
    """One value: text always as a string (so ``=...`` or ``0012`` stays text), amounts as yuan
    numbers, dates and times as real Excel dates."""
    fmt = fmts.cells[kind]
    if kind == "text":
        ws.write_string(row, col, value, fmt)
    elif kind == "int":
        ws.write_number(row, col, value, fmt)
    elif kind == "fen":
        ws.write_number(row, col, value / 100, fmt)
    else:
        ws.write_datetime(row, col, value, fmt)


def _width(kind: Kind, value: Any) -> int:
    if kind == "text":
        return _display_width(value)
    if kind == "fen":
        return len(yuan_grouped(value))
    if kind == "int":
        return len(f"{value:,}")
    return 10 if kind == "date" else 19


def _print_setup(ws: Worksheet, title: str, *, repeat_header: bool) -> None:
    ws.set_paper(9)  # A4
    ws.set_landscape()
    ws.fit_to_pages(1, 0)  # one page wide, as many tall as needed
    if repeat_header:
        ws.repeat_rows(0)
    ws.set_footer(f"&L{title.replace('&', '&&')}&R第 &P 页，共 &N 页")


#: column widths follow the first rows (measuring every cell of a 100,000-row sheet costs seconds)
_WIDTH_SAMPLE = 2000


def _write_table(
    ws: Worksheet,
    columns: Sequence[Column],
    frame: pl.DataFrame,
    fmts: _Formats,
    *,
    totals: bool,
    empty_line: str | None = None,
) -> None:
    """A sheet holding one table: header row (frozen, with an autofilter over the data rows),
    the rows, and optionally a totals row of ``=SUM()`` formulas (with cached values) under the
    int and fen columns."""
    widths = [_display_width(c.header) + 4 for c in columns]  # room for the filter button
    for c, col in enumerate(columns):
        ws.write_string(0, c, col.header, fmts.header)
        for r, value in enumerate(frame.get_column(col.key).to_list(), start=1):
            if value is not None:
                _write_cell(ws, r, c, col.kind, value, fmts)
                if r <= _WIDTH_SAMPLE:
                    widths[c] = max(widths[c], _width(col.kind, value) + 2)
    n = frame.height
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, n, max(len(columns) - 1, 0))
    if n == 0 and empty_line is not None:
        ws.write_string(1, 0, empty_line, fmts.note)
    if totals:
        summed = [i for i, c in enumerate(columns) if c.kind in ("int", "fen")]
        label_at = next((i for i in range(len(columns)) if i not in summed), None)
        if label_at is not None:
            ws.write_string(n + 1, label_at, TOTAL_LABEL, fmts.total_label)
        for i in summed:
            col = columns[i]
            total = int(frame.get_column(col.key).sum())
            value = total / 100 if col.kind == "fen" else total
            letter = xl_col_to_name(i)
            if n:
                formula = f"=SUM({letter}2:{letter}{n + 1})"
                ws.write_formula(n + 1, i, formula, fmts.totals[col.kind], value)
            else:
                ws.write_number(n + 1, i, value, fmts.totals[col.kind])
            widths[i] = max(widths[i], _width(col.kind, total) + 2)
    for c, w in enumerate(widths):
        ws.set_column(c, c, min(w, _MAX_WIDTH))


_PLAIN_CRITERION = re.compile(r"[^\W\d_][^*?~]{0,254}")


def _exact_match_needed(values: Sequence[str]) -> set[str]:
    """Group values a SUMIFS criterion would not match exactly, so the summary uses an
    ``EXACT()`` formula for them: criteria are case-insensitive, treat ``* ? ~`` as wildcards,
    ``< > =`` as operators, numeric- or boolean-looking text as numbers (so ``"0012"`` would
    also match ``"12"``) and stop at 255 characters. A value that starts with a letter (Latin
    or CJK), has no wildcard, is at most 255 characters and is unique ignoring case is safe.
    The EXACT form, ``SUMPRODUCT(EXACT(keys,$A5)*amounts)``, compares case-sensitively and
    literally, as the Python summary does."""
    folded: dict[str, int] = {}
    for v in values:
        folded[v.casefold()] = folded.get(v.casefold(), 0) + 1
    return {
        v
        for v in values
        if not _PLAIN_CRITERION.fullmatch(v)
        or v.upper() in ("TRUE", "FALSE")
        or folded[v.casefold()] > 1
    }


def _write_summary_sheet(
    ws: Worksheet, report: Report, summary: pl.DataFrame, n_detail: int, fmts: _Formats
) -> None:
    """Title, subtitle, facts, the summary table as formulas over the detail sheet (cached
    values from ``summary``), notes and signature lines."""
    ws.write_string(0, 0, report.title, fmts.title)
    ws.set_row(0, 24)
    ws.write_string(1, 0, report.subtitle, fmts.subtitle)
    row = 3
    for label, value in report.facts:
        ws.write_string(row, 0, label, fmts.label)
        ws.write_string(row, 1, value)
        row += 1
    row += 1

    kinds = {c.key: c.kind for c in report.detail_columns}
    letters = {c.key: xl_col_to_name(i) for i, c in enumerate(report.detail_columns)}
    group_kind = kinds[report.group_key]
    last = n_detail + 1

    def rng(key: str) -> str:
        return f"'{DETAIL_SHEET}'!${letters[key]}$2:${letters[key]}${last}"

    header_row = row
    ws.write_string(header_row, 0, report.group_header, fmts.header)
    for j, m in enumerate(report.measures, start=1):
        ws.write_string(header_row, j, m.header, fmts.header)
    groups = summary.head(summary.height - 1)
    keys = groups.get_column(report.group_key).to_list()
    exact = _exact_match_needed(keys) if group_kind == "text" else set()
    widths = [_display_width(report.group_header) + 2] + [
        _display_width(m.header) + 2 for m in report.measures
    ]
    widths[0] = max([widths[0], *(_display_width(label) + 2 for label, _ in report.facts)])
    for i, key in enumerate(keys):
        r = header_row + 1 + i
        _write_cell(ws, r, 0, group_kind, key, fmts)
        widths[0] = max(widths[0], _width(group_kind, key) + 2)
        crit = f"$A{r + 1}"
        for j, m in enumerate(report.measures, start=1):
            if key in exact:
                # SUMPRODUCT evaluates its argument as an array (no Ctrl+Shift+Enter needed)
                times = rng(m.detail_key) if m.detail_key else "1"
                formula = f"=SUMPRODUCT(EXACT({rng(report.group_key)},{crit})*{times})"
            elif m.detail_key:
                formula = f"=SUMIFS({rng(m.detail_key)},{rng(report.group_key)},{crit})"
            else:
                formula = f"=COUNTIFS({rng(report.group_key)},{crit})"
            value = groups.item(i, m.header)
            ws.write_formula(r, j, formula, fmts.cells[m.kind], _cached(m.kind, value))
            widths[j] = max(widths[j], _width(m.kind, value) + 2)
    total_row = header_row + 1 + len(keys)
    ws.write_string(total_row, 0, TOTAL_LABEL, fmts.total_label)
    for j, m in enumerate(report.measures, start=1):
        total = summary.item(summary.height - 1, m.header)
        letter = xl_col_to_name(j)
        if keys:
            formula = f"=SUM({letter}{header_row + 2}:{letter}{total_row})"
            ws.write_formula(total_row, j, formula, fmts.totals[m.kind], _cached(m.kind, total))
        else:
            ws.write_number(total_row, j, _cached(m.kind, total), fmts.totals[m.kind])
        widths[j] = max(widths[j], _width(m.kind, total) + 2)

    row = total_row + 2
    for note in report.notes:
        ws.write_string(row, 0, note, fmts.note)
        row += 1
    row += 1
    for role in report.signatures:
        ws.set_row(row, 30)
        ws.write_string(
            row, 0, f"{role}：________________    日期：________________", fmts.signature
        )
        row += 1
    for c, w in enumerate(widths):
        ws.set_column(c, c, min(max(w, 10), _MAX_WIDTH))
    _print_setup(ws, report.title, repeat_header=False)


def _cached(kind: Kind, value: int) -> float | int:
    """The value a formula cell caches: yuan for fen, the integer otherwise."""
    return value / 100 if kind == "fen" else value


def _utc_naive(moment: dt.datetime) -> dt.datetime:
    """``as_of`` for xlsxwriter, which writes the time it is given with a ``Z`` (UTC) suffix:
    naive values are Beijing time, so convert them (and aware ones) to naive UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=CST)
    return aware.astimezone(dt.UTC).replace(tzinfo=None)


def write_xlsx(report: Report, path: Path) -> dict[str, int]:
    """The workbook (sheets 汇总, 明细 and, when exceptions are given, 异常); returns the
    summary's totals row, ``{measure.header: value}`` in fen for fen measures.

    Byte-identical for the same report: the core properties' created/modified time is
    ``as_of`` (xlsxwriter would otherwise stamp the current time), and ``in_memory`` mode gives
    every zip member xlsxwriter's fixed 1980-01-01 time (the temp-file mode instead stamps files
    on disk and reads the stamp back through the local time zone)."""
    _check_report(report)
    detail = _normalise(report.detail, report.detail_columns, "detail")
    summary = _summary(report, detail)
    exceptions = None
    if report.exceptions is not None:
        exceptions = _normalise(report.exceptions, report.exceptions_columns, "exceptions")
    with _atomic(path) as tmp:
        wb = xlsxwriter.Workbook(
            str(tmp),
            {
                "in_memory": True,
                "constant_memory": False,  # formulas are written after the data they sum
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        wb.set_properties(
            {
                "title": report.title,
                "subject": report.subtitle,
                "author": "cardlake",
                "created": _utc_naive(report.as_of),
            }
        )
        fmts = _Formats.of(wb)
        summary_ws = wb.add_worksheet(SUMMARY_SHEET)
        detail_ws = wb.add_worksheet(DETAIL_SHEET)
        _write_table(detail_ws, report.detail_columns, detail, fmts, totals=True)
        _print_setup(detail_ws, report.title, repeat_header=True)
        _write_summary_sheet(summary_ws, report, summary, detail.height, fmts)
        if exceptions is not None:
            exc_ws = wb.add_worksheet(EXCEPTIONS_SHEET)
            _write_table(
                exc_ws,
                report.exceptions_columns,
                exceptions,
                fmts,
                totals=False,
                empty_line=NO_EXCEPTIONS,
            )
            _print_setup(exc_ws, report.title, repeat_header=True)
        summary_ws.activate()
        wb.close()
    last = summary.row(summary.height - 1, named=True)
    return {m.header: int(last[m.header]) for m in report.measures}


# --------------------------------------------------------------------------------------------
# PDF


def register_cjk_font(path: Path = FONT_PATH) -> str:
    """Register the embedded CJK font with reportlab once per process and return its name.

    WenQuanYi Zen Hei has TrueType outlines, which reportlab subsets and embeds (it cannot embed
    the CFF outlines of the Noto CJK fonts), so the PDF shows the same glyphs on every machine."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not path.is_file():
        raise FileNotFoundError(
            f"the PDF reports embed the CJK font {path}, which is missing: install the Debian "
            f"package {FONT_PACKAGE} (apt-get install {FONT_PACKAGE}; see requirements/apt.txt)"
        )
    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
        for bold in (0, 1):  # no bold face: <b> in a paragraph falls back to the regular one
            for italic in (0, 1):
                addMapping(FONT_NAME, bold, italic, FONT_NAME)
    return FONT_NAME


def _pdf_groups(report: Report, summary: pl.DataFrame) -> list[tuple[str, list[int]]]:
    """The summary rows the PDF prints, as (label, values): every group when there are
    few; otherwise the largest ``PDF_TOP_GROUPS`` by the first measure (largest first), one
    "其他 N 项" row for the rest, and the totals row."""
    key = report.group_key
    kind = {c.key: c.kind for c in report.detail_columns}[key]
    headers = [m.header for m in report.measures]
    groups = summary.head(summary.height - 1)
    rest: pl.DataFrame | None = None
    if groups.height > PDF_TOP_GROUPS + 1:
        ranked = groups.sort([headers[0], key], descending=[True, False])
        groups, rest = ranked.head(PDF_TOP_GROUPS), ranked.slice(PDF_TOP_GROUPS)
    rows = [
        (_cell_text(kind, r[key]), [r[h] for h in headers]) for r in groups.iter_rows(named=True)
    ]
    if rest is not None:
        sums = rest.select(pl.col(headers).sum()).row(0)
        rows.append((f"其他 {rest.height} 项", [int(v) for v in sums]))
    totals = summary.row(summary.height - 1, named=True)
    rows.append((TOTAL_LABEL, [totals[h] for h in headers]))
    return rows


def _fit_widths(
    texts: Sequence[Sequence[str]],
    headers: Sequence[str],
    flexible: Sequence[bool],
    font: str,
    size: float,
    total: float,
) -> list[float]:
    """PDF column widths (points) that fill ``total``: every column gets its widest value on one
    line (headers may wrap onto two) and the spare room in proportion. When that is too wide,
    the flexible (text) columns give way, the widest first (one cap for all of them, so short
    codes stay on one line and long names wrap), and only when they cannot all columns shrink
    in proportion."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    pad = 2 * _CELL_PAD + 2
    natural = [
        max([stringWidth(h, font, size) / 2 + size, *(stringWidth(t, font, size) for t in col)])
        + pad
        for h, col in zip(headers, texts, strict=True)
    ]
    need = sum(natural)
    if need <= total:
        return [w * total / need for w in natural]
    room = total - sum(w for w, flex in zip(natural, flexible, strict=True) if not flex)
    if room < 0.25 * total:
        return [w * total / need for w in natural]
    flex = sorted(w for w, f in zip(natural, flexible, strict=True) if f)
    cap, left = 0.0, room  # water-filling: the cap under which the flexible widths fit the room
    for i, w in enumerate(flex):
        cap = left / (len(flex) - i)
        if w > cap:
            break
        left -= w
    return [min(w, cap) if f else w for w, f in zip(natural, flexible, strict=True)]


def _pdf_date(moment: dt.datetime) -> str:
    """``as_of`` as a PDF date string in Beijing time."""
    return _beijing(moment).strftime("D:%Y%m%d%H%M%S+08'00'")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_pdf(report: Report, path: Path) -> None:
    """One or two A4 pages for signing: title, subtitle, facts, the summary with its totals
    (yuan with thousands separators, right-aligned), notes, the first exceptions, signatures.

    Byte-identical for the same report: reportlab's invariant mode (fixed document ID and no
    clock) with the info dictionary's creation/modification date set to ``as_of``."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _check_report(report)
    font = register_cjk_font()
    detail = _normalise(report.detail, report.detail_columns, "detail")
    summary = _summary(report, detail)
    exceptions = None
    if report.exceptions is not None:
        exceptions = _normalise(report.exceptions, report.exceptions_columns, "exceptions")

    margin = 15 * mm
    width = A4[0] - 2 * margin
    grey = colors.HexColor("#595959")
    rule = colors.HexColor("#808080")
    head_bg = colors.HexColor("#D9E1F2")
    total_bg = colors.HexColor("#EDEDED")

    def style(name: str, size: float, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.3, **kw)

    title_st = style("title", 17, spaceAfter=2)
    sub_st = style("subtitle", 9, textColor=grey, spaceAfter=6)
    body = style("body", 9)
    small = style("small", 8)
    head_st = style("head", 8.5, alignment=TA_CENTER, wordWrap="CJK")
    num_st = style("num", 8.5, alignment=TA_RIGHT)
    cell_st = style("cell", 8.5, wordWrap="CJK")
    section = style("section", 10.5, spaceBefore=8, spaceAfter=4)
    exc_head = style("exc_head", 7, alignment=TA_CENTER, wordWrap="CJK")
    exc_cell = style("exc_cell", 7, wordWrap="CJK")
    exc_num = style("exc_num", 7, alignment=TA_RIGHT)

    def p(text: str, st: ParagraphStyle) -> Paragraph:
        return Paragraph(escape(text), st)

    story: list[Any] = [p(report.title, title_st), p(report.subtitle, sub_st)]

    if report.facts:  # label/value pairs, two pairs per line
        cells = [[p(label, small), p(value, body)] for label, value in report.facts]
        if len(cells) % 2:
            cells.append(["", ""])
        fact_rows = [cells[i] + cells[i + 1] for i in range(0, len(cells), 2)]
        facts = Table(
            fact_rows, colWidths=[0.12 * width, 0.38 * width] * 2, hAlign="LEFT", spaceAfter=4
        )
        facts.setStyle(
            TableStyle(
                [
                    ("TEXTCOLOR", (0, 0), (0, -1), grey),
                    ("TEXTCOLOR", (2, 0), (2, -1), grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, -1), (-1, -1), 0.5, rule),
                    ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        story.append(facts)

    story.append(p(f"汇总（按{report.group_header}）", section))
    rows = _pdf_groups(report, summary)
    kinds = [m.kind for m in report.measures]
    data: list[list[Any]] = [
        [p(report.group_header, head_st)] + [p(m.header, head_st) for m in report.measures]
    ]
    for label, values in rows:
        data.append(
            [p(label, cell_st)]
            + [p(_cell_text(k, v), num_st) for k, v in zip(kinds, values, strict=True)]
        )
    widths = _fit_widths(
        [
            [r[0] for r in rows],
            *([_cell_text(k, r[1][j]) for r in rows] for j, k in enumerate(kinds)),
        ],
        [report.group_header, *(m.header for m in report.measures)],
        [True] + [False] * len(kinds),
        font,
        8.5,
        width,
    )
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), head_bg),
                ("BACKGROUND", (0, -1), (-1, -1), total_bg),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, rule),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.black),
                ("LINEBELOW", (0, 1), (-1, -3), 0.25, colors.HexColor("#D0D0D0")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PAD),
                ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PAD),
            ]
        )
    )
    story.append(table)

    if report.notes:
        story.append(Spacer(1, 4))
        story.extend(p(note, small) for note in report.notes)

    if exceptions is not None:
        n = exceptions.height
        story.append(p(f"异常（共 {n} 条）" if n else "异常", section))
        if n == 0:
            story.append(p(NO_EXCEPTIONS, body))
        else:
            cols = report.exceptions_columns
            shown = exceptions.head(PDF_EXCEPTION_ROWS)
            texts = [
                [_clip(_cell_text(c.kind, v)) for v in shown.get_column(c.key).to_list()]
                for c in cols
            ]
            exc_widths = _fit_widths(
                texts, [c.header for c in cols], [c.kind == "text" for c in cols], font, 7, width
            )
            exc = [[p(c.header, exc_head) for c in cols]]
            for i in range(shown.height):
                exc.append(
                    [
                        p(texts[j][i], exc_num if c.kind in ("int", "fen") else exc_cell)
                        for j, c in enumerate(cols)
                    ]
                )
            exc_table = Table(exc, colWidths=exc_widths, repeatRows=1)
            exc_table.setStyle(
                TableStyle(
                    [
                        ("BACKGROUND", (0, 0), (-1, 0), head_bg),
                        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#D0D0D0")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("TOPPADDING", (0, 0), (-1, -1), 1),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                        ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PAD),
                        ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PAD),
                    ]
                )
            )
            story.append(exc_table)
            if n > PDF_EXCEPTION_ROWS:
                story.append(p(f"… 共 {n} 条，完整清单见 XLSX/CSV", small))

    if report.signatures:
        k = len(report.signatures)
        labels = [f"{role}：" for role in report.signatures]
        label_w = max(stringWidth(t, font, 9) for t in [*labels, "日期："]) + 14
        gap_w = 6 * mm
        line_w = width / k - label_w - gap_w
        sig_rows = [
            [cell for label in labels for cell in (p(label, body), "", "")],
            [cell for _ in report.signatures for cell in (p("日期：", body), "", "")],
        ]
        sig = Table(sig_rows, colWidths=[label_w, line_w, gap_w] * k, rowHeights=26)
        lines = [
            ("LINEBELOW", (3 * i + 1, 0), (3 * i + 1, -1), 0.6, colors.black) for i in range(k)
        ]
        sig.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM"), *lines]))
        story.append(KeepTogether([Spacer(1, 14), sig]))

    footer_text = report.title

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.setFillColor(grey)
        canvas.drawString(margin, 9 * mm, footer_text)
        canvas.drawRightString(A4[0] - margin, 9 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    stamp = _pdf_date(report.as_of)

    def canvas_maker(*args: Any, **kwargs: Any) -> Canvas:
        canvas = Canvas(*args, **kwargs)
        canvas.setDateFormatter(lambda *_: stamp)
        return canvas

    with _atomic(path) as tmp:
        doc = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=margin,
            rightMargin=margin,
            topMargin=margin,
            bottomMargin=margin + 4 * mm,
            title=report.title,
            subject=report.subtitle,
            author="cardlake",
            creator="cardlake",
            invariant=1,
        )
        doc.build(story, onFirstPage=footer, onLaterPages=footer, canvasmaker=canvas_maker)


# --------------------------------------------------------------------------------------------


def write_all(report: Report, folder: Path, stem: str) -> dict[str, Path]:
    """All three files as ``folder/stem.{csv,xlsx,pdf}``; returns their paths by format."""
    paths = {ext: folder / f"{stem}.{ext}" for ext in ("csv", "xlsx", "pdf")}
    writers: dict[str, Callable[[Report, Path], object]] = {
        "csv": write_csv,
        "xlsx": write_xlsx,
        "pdf": write_pdf,
    }
    for ext, path in paths.items():
        writers[ext](report, path)
    return paths
