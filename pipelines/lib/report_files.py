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

Modules: ``report_model`` (the report, its values and summary), this one (CSV, and all three
files), ``report_xlsx``, ``report_pdf``.

Times: naive values are taken as Beijing wall-clock time (as the shops record them); tz-aware
values are converted to Asia/Shanghai first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipelines.lib.csv_cells import csv_field, csv_text
from pipelines.lib.report_model import (
    DATETIME_TEXT,
    Column,
    Report,
    atomic_path,
    check_columns,
    typed,
    yuan_text,
)
from pipelines.lib.report_pdf import write_pdf
from pipelines.lib.report_xlsx import write_xlsx

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
        expr = expr.dt.strftime(DATETIME_TEXT)
    return expr.alias(csv_field(col.header))


def write_csv(report: Report, path: Path) -> None:
    """The line-level CSV: UTF-8 with BOM, Chinese headers, yuan as exact two-decimal text,
    ISO dates, ``YYYY-MM-DD HH:MM:SS`` Beijing times, LF line ends. Text cells are neutralised
    against formula injection and quoted where needed (``csv_cells.csv_text``); polars writes the fields
    as they are (``quote_style="never"``: every field that needs quotes already has them). One
    vectorised polars pass (500,000 rows take well under a second)."""
    check_columns(report.csv_columns, "csv")
    missing = [c.key for c in report.csv_columns if c.key not in report.csv_rows.columns]
    if missing:
        raise KeyError(f"csv: no column {missing} in the frame (it has {report.csv_rows.columns})")
    schema = report.csv_rows.schema
    out = (
        report.csv_rows.lazy()
        .select([typed(c, schema[c.key], "csv") for c in report.csv_columns])
        .select([_csv_expr(c) for c in report.csv_columns])
        .collect()
    )
    with atomic_path(path) as tmp:
        out.write_csv(tmp, include_bom=True, line_terminator="\n", quote_style="never")


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
