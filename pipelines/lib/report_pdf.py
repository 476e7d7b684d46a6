"""A settlement report as a PDF for signing (``write_pdf``): one or two A4 pages in an embedded
CJK font; byte for byte reproducible (``report_files`` says how)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import polars as pl

from pipelines.lib.report_model import (
    NO_EXCEPTIONS,
    TOTAL_LABEL,
    Report,
    atomic_path,
    beijing,
    cell_text,
    check_report,
    normalise,
    summary_rows,
)

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
FONT_NAME = "WenQuanYiZenHei"
FONT_PACKAGE = "fonts-wqy-zenhei"
PDF_TOP_GROUPS = 20  # the PDF shows at most this many groups (then one "其他 N 项" row)
PDF_EXCEPTION_ROWS = 15  # and at most this many exceptions
_CELL_PAD = 3  # points of padding left and right in the PDF tables' cells


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
        (cell_text(kind, r[key]), [r[h] for h in headers]) for r in groups.iter_rows(named=True)
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
    return beijing(moment).strftime("D:%Y%m%d%H%M%S+08'00'")


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

    check_report(report)
    font = register_cjk_font()
    detail = normalise(report.detail, report.detail_columns, "detail")
    summary = summary_rows(report, detail)
    exceptions = None
    if report.exceptions is not None:
        exceptions = normalise(report.exceptions, report.exceptions_columns, "exceptions")

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
            + [p(cell_text(k, v), num_st) for k, v in zip(kinds, values, strict=True)]
        )
    widths = _fit_widths(
        [
            [r[0] for r in rows],
            *([cell_text(k, r[1][j]) for r in rows] for j, k in enumerate(kinds)),
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
                [_clip(cell_text(c.kind, v)) for v in shown.get_column(c.key).to_list()]
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

    with atomic_path(path) as tmp:
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
