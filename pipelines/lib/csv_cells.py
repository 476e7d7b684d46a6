"""CSV cells finance can open safely: text that a spreadsheet would run as a formula is
neutralised the way OWASP's "CSV Injection" page recommends, and fields are quoted so that
nothing in them can end a cell early. Used by the reports' CSV writer (``report_files``), which
applies ``csv_text`` to text columns only: amounts, counts, dates and times stay as they are.
"""

from __future__ import annotations

import re

import polars as pl

#: a CSV text cell starting with one of these is read as a formula by a spreadsheet (OWASP "CSV
#: Injection": = + - @, tab, carriage return), and the full-width forms ＝ ＋ － ＠ too: Excel
#: with a Chinese or Japanese input method takes a full-width ＝ for = when a formula is typed,
#: and whether a version or locale does so when it opens a file is not something to bet a
#: finance workstation on. Neutralising costs nothing: the value is the cell without its '
FORMULA_TRIGGERS = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"
#: the mark that neutralises a cell; a cell that already starts with it gets one more, so that
#: every neutralised cell, and only those, starts with it: the original is the cell without it
ESCAPE = "'"
_ESCAPED = "^[" + "".join("\\-" if c == "-" else c for c in FORMULA_TRIGGERS + ESCAPE) + "]"
#: a CSV field holding one of these is quoted (as polars quotes by default): the separator, the
#: quote and line breaks
_QUOTE_NEEDED = '[,"\r\n]'


def neutralise_formula(text: str) -> str:
    """A text cell a spreadsheet will not read as a formula: ``'`` + the text when it starts with
    one of ``FORMULA_TRIGGERS`` (OWASP's CSV Injection advice) or with ``'`` itself, otherwise the
    text as it is. So the original is always the cell without its first character when that is a
    ``'`` (``restore_formula``). ``neutralised`` does the same to a polars column (``write_csv``
    uses it); this one is for single values and for the tests."""
    return ESCAPE + text if text and text[0] in FORMULA_TRIGGERS + ESCAPE else text


def restore_formula(cell: str) -> str:
    """The text a neutralised cell stands for: the cell without its leading ``'``, if any."""
    return cell.removeprefix(ESCAPE)


def neutralised(expr: pl.Expr) -> pl.Expr:
    """``neutralise_formula`` over a String column, vectorised (nulls stay null)."""
    return pl.when(expr.str.contains(_ESCAPED)).then(pl.lit(ESCAPE) + expr).otherwise(expr)


def csv_field(text: str) -> str:
    """One text cell as written in the CSV (headers): neutralised, and quoted as ``csv_text``
    quotes."""
    value = neutralise_formula(text)
    if value.startswith(ESCAPE) or value == "" or re.search(_QUOTE_NEEDED, value):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_text(expr: pl.Expr) -> pl.Expr:
    """A text column as finished CSV fields (the file is written with ``quote_style="never"``):
    neutralised, and quoted (inner quotes doubled) when it was neutralised, holds the separator,
    a quote or a line break, or is empty. A neutralised cell is always quoted (OWASP: quote it,
    so that nothing in it can end the cell early). Other cells are quoted exactly when polars'
    default quoting would: the bytes, and so the reports' fingerprints, change only where a
    cell needed neutralising."""
    value = neutralised(expr)  # a neutralised cell, and only such a cell, starts with ESCAPE
    quote = value.str.starts_with(ESCAPE) | value.str.contains(_QUOTE_NEEDED) | (value == "")
    quoted = pl.lit('"') + value.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(quote).then(quoted).otherwise(value)
