"""A settlement report as an XLSX workbook (``write_xlsx``): sheet 汇总 with the summary as live
SUMIFS/COUNTIFS formulas over the detail (their values cached), sheet 明细 and, when given, sheet
异常. Text is always a string cell; byte for byte reproducible (``report_files`` says how)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from pipelines.lib.calendar import CST
from pipelines.lib.report_model import (
    DETAIL_SHEET,
    EXCEPTIONS_SHEET,
    NO_EXCEPTIONS,
    SUMMARY_SHEET,
    TOTAL_LABEL,
    Column,
    Kind,
    Report,
    atomic_path,
    check_report,
    display_width,
    normalise,
    summary_rows,
    yuan_grouped,
)

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
        return display_width(value)
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
    widths = [display_width(c.header) + 4 for c in columns]  # room for the filter button
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
    widths = [display_width(report.group_header) + 2] + [
        display_width(m.header) + 2 for m in report.measures
    ]
    widths[0] = max([widths[0], *(display_width(label) + 2 for label, _ in report.facts)])
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
    check_report(report)
    detail = normalise(report.detail, report.detail_columns, "detail")
    summary = summary_rows(report, detail)
    exceptions = None
    if report.exceptions is not None:
        exceptions = normalise(report.exceptions, report.exceptions_columns, "exceptions")
    with atomic_path(path) as tmp:
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
