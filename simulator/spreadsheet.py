"""What a spreadsheet does to a statement someone opened and saved again before sending it on.

Finance staff open the channel's CSV in Excel (or WPS) to look at it and save it back; the file
that reaches the lake then differs from the export in ways a parser must survive:

- the encoding switches: Alipay's GBK comes back as UTF-8 with a BOM ("CSV UTF-8"), WeChat's
  UTF-8 comes back as GBK (a Chinese Windows' "CSV" is its ANSI code page);
- every row is padded with commas to the width of the widest one, so the one-cell ``#`` header
  and footer lines of an Alipay statement end in a run of commas;
- long IDs are written as ``="2088…"`` formulas so that they stay text, and cells holding a
  quote or a comma are quoted;
- blank rows and comma-only rows follow the data;
- the times it recognised as dates are written in its own date format: ``2026/10/5 8:00:05``
  (times a channel prefixes, as WeChat's backtick does, stay text and keep their form).

Two kinds of damage nothing can undo, after which a parser must refuse the file whole, naming the
line: ``scientific=True``, the long IDs were turned into numbers and written in scientific
notation (``2.02610E+27``), their digits lost; ``seconds=False``, the date format was the default
one without seconds (``2026/10/5 8:00``), every time cut to its minute.
"""

from __future__ import annotations

import csv
import io
import re

_LONG_ID = re.compile(r"^[`]?(\d{12,})(\t?)$")
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")


def resaved(data: bytes, encoding: str, *, scientific: bool = False, seconds: bool = True) -> bytes:
    """``data`` (a statement in ``encoding``) as a spreadsheet saves it again."""
    text = data.decode(encoding)
    rows = [_cells(line) for line in text.splitlines()]
    width = max((len(r) for r in rows), default=0)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    for cells in rows:
        cells = [_cell(c, scientific, seconds) for c in cells]
        writer.writerow(cells + [""] * (width - len(cells)))
    out.write("," * (width - 1) + "\r\n" + "\r\n")
    target = "utf-8-sig" if encoding.lower() == "gbk" else "gbk"
    return out.getvalue().encode(target)


def _cells(line: str) -> list[str]:
    if line.startswith("#"):
        return [line]
    return next(csv.reader([line]))


def _cell(cell: str, scientific: bool, seconds: bool) -> str:
    if t := _TIME.match(cell):
        y, mo, d, h, mi, sec = (int(x) for x in t.groups())
        return f"{y}/{mo}/{d} {h}:{mi:02d}" + (f":{sec:02d}" if seconds else "")
    m = _LONG_ID.match(cell)
    if m is None:
        return cell
    digits = m.group(1)
    if scientific:
        return f"{digits[0]}.{digits[1:6]}E+{len(digits) - 1}"
    return f'="{digits}"'
