"""What a spreadsheet does to a statement someone opened and saved again before sending it on.

Finance staff open the channel's CSV in Excel (or WPS) to look at it and save it back; the file
that reaches the lake then differs from the export in ways a parser must survive:

- the encoding switches: Alipay's GBK comes back as UTF-8 with a BOM ("CSV UTF-8"), WeChat's
  UTF-8 comes back as GBK (a Chinese Windows' "CSV" is its ANSI code page);
- every row is padded with commas to the width of the widest one, so the one-cell ``#`` header
  and footer lines of an Alipay statement end in a run of commas;
- long IDs are written as ``="2088…"`` formulas so that they stay text, and cells holding a
  quote or a comma are quoted;
- blank rows and comma-only rows follow the data.

``scientific=True`` is the damage nothing can undo: the long IDs were turned into numbers and
written in scientific notation (``2.02610E+27``), their digits lost. A parser must refuse such a
file whole, naming the line.
"""

from __future__ import annotations

import csv
import io
import re

_LONG_ID = re.compile(r"^[`]?(\d{12,})(\t?)$")


def resaved(data: bytes, encoding: str, *, scientific: bool = False) -> bytes:
    """``data`` (a statement in ``encoding``) as a spreadsheet saves it again."""
    text = data.decode(encoding)
    rows = [_cells(line) for line in text.splitlines()]
    width = max((len(r) for r in rows), default=0)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    for cells in rows:
        writer.writerow([_cell(c, scientific) for c in cells] + [""] * (width - len(cells)))
    out.write("," * (width - 1) + "\r\n" + "\r\n")
    target = "utf-8-sig" if encoding.lower() == "gbk" else "gbk"
    return out.getvalue().encode(target)


def _cells(line: str) -> list[str]:
    if line.startswith("#"):
        return [line]
    return next(csv.reader([line]))


def _cell(cell: str, scientific: bool) -> str:
    m = _LONG_ID.match(cell)
    if m is None:
        return cell
    digits = m.group(1)
    if scientific:
        return f"{digits[0]}.{digits[1:6]}E+{len(digits) - 1}"
    return f'="{digits}"'
