"""The settlement report files: exact amounts in the CSV, live and cached formulas in the XLSX,
a signable PDF in an embedded CJK font, and the same bytes every time for the same report."""

from __future__ import annotations

import csv
import datetime as dt
import re
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.lib.csv_cells import (
    ESCAPE,
    FORMULA_TRIGGERS,
    neutralise_formula,
    neutralised,
    restore_formula,
)
from pipelines.lib.report_files import write_all, write_csv
from pipelines.lib.report_model import (
    Column,
    Measure,
    Report,
    summary_table,
    yuan_grouped,
    yuan_text,
)
from pipelines.lib.report_pdf import FONT_PACKAGE, register_cjk_font, write_pdf
from pipelines.lib.report_xlsx import write_xlsx

pytestmark = pytest.mark.unit

BOM = b"\xef\xbb\xbf"
AS_OF = dt.datetime(2026, 10, 2, 2, 15)  # naive: Beijing time

DETAIL_COLUMNS = [
    Column("account_name", "收款账户"),
    Column("status", "对账状态"),
    Column("order_no", "订单号"),
    Column("paid_at", "支付时间", "datetime"),
    Column("settle_date", "结算日", "date"),
    Column("qty", "数量", "int"),
    Column("amount_fen", "收款金额（元）", "fen"),
    Column("fee_fen", "手续费（元）", "fen"),
]
MEASURES = [
    Measure("笔数", None, "int"),
    Measure("数量", "qty", "int"),
    Measure("收款金额（元）", "amount_fen"),
    Measure("手续费（元）", "fee_fen"),
]


def _detail() -> pl.DataFrame:
    """Two accounts × statuses, with a negative amount, a zero, an order number that looks like
    a formula and one with leading zeros."""
    rows = [
        ("支付宝 主账户", "已对平", "=1+2", 1, 123456, 741),
        ("支付宝 主账户", "已对平", "0012", 2, 5, 0),
        ("支付宝 主账户", "金额不符", "A-1003", 1, -12345, -74),
        ("支付宝 主账户", "长款", "@SUM(A1)", 3, 0, 0),
        ("支付宝 备用账户", "已对平", "+86-1005", 1, 99999999, 600000),
        ("支付宝 备用账户", "短款", "-1006", 2, 100, 1),
        ("支付宝 备用账户", "已对平", "卡密订单 1007", 1, 1, 0),
    ]
    start = dt.datetime(2026, 10, 1, 8, 0)
    return pl.DataFrame(
        {
            "account_name": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "order_no": [r[2] for r in rows],
            "paid_at": [start + dt.timedelta(minutes=97 * i) for i in range(len(rows))],
            "settle_date": [dt.date(2026, 10, 2)] * len(rows),
            "qty": [r[3] for r in rows],
            "amount_fen": [r[4] for r in rows],
            "fee_fen": [r[5] for r in rows],
        }
    )


def _report(**changes: object) -> Report:
    detail = _detail()
    exceptions = detail.filter(pl.col("status") != "已对平")
    fields: dict[str, object] = {
        "title": "支付宝 渠道对账单",
        "subtitle": "Alipay channel reconciliation · statement day 2026-10-01 · v2",
        "facts": [("渠道", "支付宝 alipay"), ("账单日", "2026-10-01"), ("版本", "v2")],
        "detail_columns": DETAIL_COLUMNS,
        "detail": detail,
        "group_key": "account_name",
        "group_header": "收款账户",
        "measures": MEASURES,
        "csv_columns": DETAIL_COLUMNS,
        "csv_rows": detail,
        "exceptions_columns": DETAIL_COLUMNS,
        "exceptions": exceptions,
        "notes": ["金额单位：元。"],
        "as_of": AS_OF,
    }
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


def _groups(detail: pl.DataFrame, key: str = "account_name") -> pl.DataFrame:
    """The summary computed independently of the module."""
    return (
        detail.group_by(key)
        .agg(
            pl.len().alias("n"),
            pl.col("qty").sum(),
            pl.col("amount_fen").sum(),
            pl.col("fee_fen").sum(),
        )
        .sort(key)
    )


def _pdftotext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def _pdfinfo(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["pdfinfo", "-isodates", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


# --------------------------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=-(10**15), max_value=10**15), min_size=1, max_size=60))
def test_fen_become_exact_yuan_text(fens: list[int]) -> None:
    out = pl.DataFrame({"f": fens}, schema={"f": pl.Int64}).select(yuan_text(pl.col("f")))
    texts = out.to_series().to_list()
    assert all(re.fullmatch(r"-?\d+\.\d{2}", t) for t in texts)
    assert [Decimal(t) for t in texts] == [Decimal(f) / 100 for f in fens]
    grouped = [yuan_grouped(f) for f in fens]
    assert all(re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d{2}", g) for g in grouped)
    assert [Decimal(g.replace(",", "")) for g in grouped] == [Decimal(f) / 100 for f in fens]


def test_yuan_text_examples() -> None:
    fens = [-12345, 5, 0, -5, 100, -100, None]
    out = pl.DataFrame({"f": fens}).select(yuan_text(pl.col("f"))).to_series().to_list()
    assert out == ["-123.45", "0.05", "0.00", "-0.05", "1.00", "-1.00", None]
    assert yuan_grouped(123456) == "1,234.56" and yuan_grouped(-99999999) == "-999,999.99"


def test_csv_is_utf8_with_bom_chinese_headers_and_exact_amounts(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    write_csv(_report(), path)
    raw = path.read_bytes()
    assert raw.startswith(BOM) and b"\r" not in raw
    lines = raw[len(BOM) :].decode("utf-8").splitlines()
    assert lines[0] == "收款账户,对账状态,订单号,支付时间,结算日,数量,收款金额（元）,手续费（元）"
    # an order number that looks like a formula is neutralised (a leading ' and quoted)
    assert lines[1] == '支付宝 主账户,已对平,"\'=1+2",2026-10-01 08:00:00,2026-10-02,1,1234.56,7.41'
    assert lines[2].split(",")[2] == "0012" and lines[2].endswith(",0.05,0.00")
    assert lines[3].endswith(",-123.45,-0.74")
    assert lines[5].endswith(",999999.99,6000.00")
    read = pl.read_csv(path, infer_schema=False)
    assert read.columns[0] == "收款账户" and read.height == 7


def test_csv_shows_tz_aware_times_in_beijing_time(tmp_path: Path) -> None:
    rows = pl.DataFrame(
        {"at": [dt.datetime(2026, 9, 30, 16, 30, 5, tzinfo=dt.UTC)], "day": [dt.date(2026, 10, 1)]}
    )
    cols = [Column("at", "时间", "datetime"), Column("day", "日期", "date")]
    path = tmp_path / "t.csv"
    write_csv(_report(csv_columns=cols, csv_rows=rows), path)
    assert path.read_bytes()[len(BOM) :].decode() == "时间,日期\n2026-10-01 00:30:05,2026-10-01\n"


def test_csv_writes_half_a_million_rows(tmp_path: Path) -> None:
    n = 500_000
    rows = pl.DataFrame({"i": pl.int_range(n, eager=True)}).select(
        pl.format("T{}", pl.col("i")).alias("trade_no"),
        (pl.col("i") * 7919 % 2_000_000 - 1_000_000).alias("amount_fen"),
        (pl.lit(dt.datetime(2026, 10, 1)) + pl.duration(seconds=pl.col("i") % 86_400)).alias(
            "paid_at"
        ),
    )
    cols = [
        Column("trade_no", "渠道流水号"),
        Column("amount_fen", "金额（元）", "fen"),
        Column("paid_at", "支付时间", "datetime"),
    ]
    path = tmp_path / "big.csv"
    write_csv(_report(csv_columns=cols, csv_rows=rows), path)
    back = pl.read_csv(path, infer_schema=False)
    assert back.height == n and back.columns == ["渠道流水号", "金额（元）", "支付时间"]
    sums = back.select(pl.col("金额（元）").str.replace(r"\.", "").cast(pl.Int64).sum()).item()
    assert sums == rows["amount_fen"].sum()
    fen = 86_401 * 7919 % 2_000_000 - 1_000_000
    assert back.row(86_401) == ("T86401", f"{Decimal(fen) / 100:.2f}", "2026-10-01 00:00:01")


def test_xlsx_summary_is_formulas_with_cached_values(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "r.xlsx"
    totals = write_xlsx(report, path)
    wb = openpyxl.load_workbook(path)
    values = openpyxl.load_workbook(path, data_only=True)
    assert wb.sheetnames == ["汇总", "明细", "异常"]

    ws, wv = wb["汇总"], values["汇总"]
    assert ws["A1"].value == report.title and ws["A2"].value == report.subtitle
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "收款账户")
    assert [ws.cell(header, c).value for c in range(1, 6)] == [
        "收款账户",
        "笔数",
        "数量",
        "收款金额（元）",
        "手续费（元）",
    ]
    want = _groups(report.detail)
    for i, g in enumerate(want.iter_rows(named=True)):
        r = header + 1 + i
        assert ws.cell(r, 1).value == g["account_name"]
        assert ws.cell(r, 2).value.startswith("=COUNTIFS(")
        assert all(ws.cell(r, c).value.startswith("=SUMIFS(") for c in (3, 4, 5))
        assert [wv.cell(r, c).value for c in range(2, 6)] == [
            g["n"],
            g["qty"],
            g["amount_fen"] / 100,
            g["fee_fen"] / 100,
        ]
        assert ws.cell(r, 4).number_format == "#,##0.00"
    total_row = header + 1 + want.height
    assert ws.cell(total_row, 1).value == "合计"
    assert all(ws.cell(total_row, c).value.startswith("=SUM(") for c in range(2, 6))
    assert [wv.cell(total_row, c).value for c in range(2, 6)] == [
        7,
        11,
        report.detail["amount_fen"].sum() / 100,
        report.detail["fee_fen"].sum() / 100,
    ]
    assert totals == {
        "笔数": 7,
        "数量": 11,
        "收款金额（元）": report.detail["amount_fen"].sum(),
        "手续费（元）": report.detail["fee_fen"].sum(),
    }
    texts = [ws.cell(r, 1).value for r in range(total_row + 1, ws.max_row + 1)]
    assert "金额单位：元。" in texts
    assert any(t and t.startswith("审批：") and "日期：" in t for t in texts)


def test_xlsx_detail_keeps_text_as_text_and_amounts_as_yuan(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "r.xlsx"
    write_xlsx(report, path)
    wb = openpyxl.load_workbook(path)
    values = openpyxl.load_workbook(path, data_only=True)
    ws, wv = wb["明细"], values["明细"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:H8"
    assert ws.print_title_rows == "$1:$1" and ws.page_setup.orientation == "landscape"
    assert [c.value for c in ws[1]] == [c.header for c in DETAIL_COLUMNS]
    orders = [ws.cell(r, 3) for r in range(2, 9)]
    assert [c.value for c in orders] == report.detail["order_no"].to_list()
    assert all(c.data_type == "s" for c in orders)  # "=1+2", "@SUM(A1)", "+86…" stay text
    assert ws["D2"].value == dt.datetime(2026, 10, 1, 8, 0)
    assert ws["D2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["E2"].value == dt.datetime(2026, 10, 2) and ws["E2"].number_format == "yyyy-mm-dd"
    assert [ws.cell(r, 7).value for r in range(2, 9)] == [
        f / 100 for f in report.detail["amount_fen"]
    ]
    assert ws["G2"].number_format == "#,##0.00"
    assert ws["A9"].value == "合计"
    assert [ws.cell(9, c).value for c in (6, 7, 8)] == ["=SUM(F2:F8)", "=SUM(G2:G8)", "=SUM(H2:H8)"]
    assert [wv.cell(9, c).value for c in (6, 7, 8)] == [
        11,
        report.detail["amount_fen"].sum() / 100,
        report.detail["fee_fen"].sum() / 100,
    ]
    exc = wb["异常"]
    assert exc.freeze_panes == "A2" and exc.auto_filter.ref == "A1:H4"
    assert [exc.cell(r, 2).value for r in range(2, 5)] == ["金额不符", "长款", "短款"]


def test_xlsx_exceptions_sheet_says_so_when_there_are_none(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(_report(exceptions=_detail().head(0)), path)
    exc = openpyxl.load_workbook(path)["异常"]
    assert exc["A2"].value == "无异常 / no exceptions" and exc.freeze_panes == "A2"
    pdf = tmp_path / "r.pdf"
    write_pdf(_report(exceptions=_detail().head(0)), pdf)
    assert "无异常 / no exceptions" in _pdftotext(pdf)
    write_xlsx(_report(exceptions=None), path)
    assert openpyxl.load_workbook(path).sheetnames == ["汇总", "明细"]


def test_group_values_sumifs_would_misread_use_an_exact_match(tmp_path: Path) -> None:
    codes = ["0012", "12", "Ab", "AB", "a*b", "=x", "SKU-9", "卡密月卡"]
    detail = pl.DataFrame(
        {"sku": codes * 2, "amount_fen": list(range(100, 100 + 2 * len(codes))), "qty": [1] * 16}
    )
    cols = [
        Column("sku", "商品编码"),
        Column("qty", "数量", "int"),
        Column("amount_fen", "金额", "fen"),
    ]
    measures = [Measure("笔数", None, "int"), Measure("金额（元）", "amount_fen")]
    report = _report(
        detail_columns=cols, detail=detail, group_key="sku", group_header="商品", measures=measures
    )
    path = tmp_path / "r.xlsx"
    write_xlsx(report, path)
    ws = openpyxl.load_workbook(path)["汇总"]
    wv = openpyxl.load_workbook(path, data_only=True)["汇总"]
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "商品")
    rows = {ws.cell(r, 1).value: r for r in range(header + 1, header + 1 + len(codes))}
    assert sorted(rows) == sorted(codes)
    for code, r in rows.items():
        plain = code in ("SKU-9", "卡密月卡")
        assert ws.cell(r, 2).value.startswith("=COUNTIFS(" if plain else "=SUMPRODUCT(EXACT(")
        assert ws.cell(r, 3).value.startswith("=SUMIFS(" if plain else "=SUMPRODUCT(EXACT(")
        want = detail.filter(pl.col("sku") == code)["amount_fen"].sum()
        assert (wv.cell(r, 2).value, wv.cell(r, 3).value) == (2, want / 100)


def test_summary_table_is_the_groups_and_totals_as_integers() -> None:
    report = _report()
    got = summary_table(report)
    want = _groups(report.detail).rename(
        {"n": "笔数", "qty": "数量", "amount_fen": "收款金额（元）", "fee_fen": "手续费（元）"}
    )
    assert got.head(got.height - 1).equals(want.cast({"笔数": pl.Int64}))
    totals = got.row(got.height - 1, named=True)
    assert totals["account_name"] is None
    assert totals["收款金额（元）"] == report.detail["amount_fen"].sum()
    assert totals["笔数"] == 7 and totals["数量"] == 11


def test_pdf_shows_title_summary_totals_and_signatures(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "r.pdf"
    write_pdf(report, path)
    text = _pdftotext(path)
    assert report.title in text and report.subtitle in text
    total_line = next(line for line in text.splitlines() if line.strip().startswith("合计"))
    assert total_line.split()[1:] == [
        "7",
        "11",
        yuan_grouped(report.detail["amount_fen"].sum()),
        yuan_grouped(report.detail["fee_fen"].sum()),
    ]
    assert "1,001,112.16" in total_line
    assert "1,000,001.00" in text and "-123.45" in text  # a group row and an exception row
    assert "异常（共 3 条）" in text and "金额单位：元。" in text
    assert all(role in text for role in ("编制", "复核", "审批", "日期"))
    info = _pdfinfo(path)
    assert int(info["Pages"]) == 1 and info["Title"].strip() == report.title
    assert info["CreationDate"].strip().startswith("2026-10-02T02:15:00+08")
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True)
    assert "WenQuanYiZenHei" in fonts.stdout and " yes " in fonts.stdout  # embedded


def test_pdf_stays_within_two_pages_with_many_groups_and_exceptions(tmp_path: Path) -> None:
    n = 200
    detail = pl.DataFrame(
        {
            "sku": [f"SKU{i:04d} 游戏点卡 {i % 7} 月卡" for i in range(n)],
            "qty": [1 + i % 3 for i in range(n)],
            "amount_fen": [(i * 7919) % 1_000_000 - 5_000 for i in range(n)],
        }
    )
    cols = [
        Column("sku", "商品"),
        Column("qty", "数量", "int"),
        Column("amount_fen", "金额", "fen"),
    ]
    measures = [Measure("金额（元）", "amount_fen"), Measure("数量", "qty", "int")]
    report = _report(
        detail_columns=cols,
        detail=detail,
        group_key="sku",
        group_header="商品",
        measures=measures,
        exceptions_columns=cols,
        exceptions=detail.sort("amount_fen", descending=True),
        notes=[f"说明第 {i} 行：长款、短款与金额不符的处理口径。" for i in range(5)],
    )
    path = tmp_path / "r.pdf"
    write_pdf(report, path)
    text = _pdftotext(path)
    assert 1 <= int(_pdfinfo(path)["Pages"]) <= 2
    assert "其他 180 项" in text and "… 共 200 条，完整清单见 XLSX/CSV" in text
    largest = detail.sort("amount_fen", descending=True).head(20)
    assert (
        all(s in text for s in largest["sku"]) and detail.sort("amount_fen")["sku"][0] not in text
    )
    rest = detail.sort("amount_fen", descending=True).slice(20)["amount_fen"].sum()
    assert yuan_grouped(rest) in text and yuan_grouped(detail["amount_fen"].sum()) in text


def test_same_report_gives_the_same_bytes(tmp_path: Path) -> None:
    first = write_all(_report(), tmp_path / "a", "r")
    second = write_all(_report(), tmp_path / "b", "r")
    for fmt in ("csv", "xlsx", "pdf"):
        assert first[fmt].read_bytes() == second[fmt].read_bytes(), fmt
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["r.csv", "r.pdf", "r.xlsx"]
    later = write_all(_report(as_of=AS_OF + dt.timedelta(days=1)), tmp_path / "c", "r")
    assert later["xlsx"].read_bytes() != first["xlsx"].read_bytes()
    assert later["pdf"].read_bytes() != first["pdf"].read_bytes()


def test_xlsx_metadata_time_is_as_of(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "r.xlsx"
    write_xlsx(_report(), path)
    with zipfile.ZipFile(path) as z:
        core = z.read("docProps/core.xml").decode()
        stamps = {info.date_time for info in z.infolist()}
    assert core.count("2026-10-01T18:15:00Z") == 2  # created and modified, in UTC
    assert stamps == {(1980, 1, 1, 0, 0, 0)}


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    bad = _detail().with_columns(pl.col("amount_fen").cast(pl.Float64))
    with pytest.raises(TypeError, match="amount_fen"):
        write_all(_report(csv_rows=bad, detail=bad), tmp_path, "r")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_font_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=FONT_PACKAGE):
        register_cjk_font(tmp_path / "wqy-zenhei.ttc")


def test_a_count_measure_must_be_an_int() -> None:
    with pytest.raises(ValueError, match="counts rows"):
        summary_table(_report(measures=[Measure("笔数", None)]))


# ---------------------------------------------------------------------------- formula injection

#: OWASP's CSV Injection payloads and their relatives (full-width triggers, quotes and separators
#: inside, a value already starting with the escape, line breaks): every one must reach finance
#: as the text it is
INJECTIONS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://evil","x")',
    "=cmd|' /C calc'!A0",
    '=1+2";=1+2',
    "=1+2'\" ;,=1+2",
    '@SUM(1+1)*cmd|" /C calc"!A0',
    "\uff1d1+1",  # full-width ＝
    "\uff0b1+1",  # ＋
    "\uff0d1+1",  # －
    "\uff20SUM(1+1)",  # ＠
    "'=1+1",
    "'",
    "=",
    "-",
    '"=1+1"',
    'a "quoted", value',
    "x,=1+1",
    "line\n=1+1",
    "line\r\n@SUM(1+1)",
    " =1+1",
    "",
    "0012",
    "卡密订单 1007",
]
_TRIGGER_START = tuple(FORMULA_TRIGGERS)


def inject(frame: pl.DataFrame, columns: list[Column]) -> pl.DataFrame:
    """The frame with every cell of every text column replaced by an ``INJECTIONS`` entry (each
    column starting at a different entry, so every row mixes them)."""
    n = len(INJECTIONS)
    return frame.with_columns(
        pl.Series(c.key, [INJECTIONS[(i + j) % n] for i in range(frame.height)], pl.String)
        for j, c in enumerate(c for c in columns if c.kind == "text")
    )


def csv_cells(path: Path) -> list[list[str]]:
    """The CSV as Python's csv module reads it (as a spreadsheet would split it)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def check_neutralised_csv(path: Path, columns: list[Column], injected: pl.DataFrame, plain: Path):
    """``path`` (written from ``injected``) has no text cell a spreadsheet reads as a formula,
    every text value is its cell without one leading ``'`` (added exactly where needed), every
    neutralised cell is quoted in the file, and every other column is cell for cell the same as
    in ``plain`` (the same report before the injection)."""
    rows, before = csv_cells(path), csv_cells(plain)
    raw = path.read_bytes().decode("utf-8-sig")
    assert rows[0] == [c.header for c in columns] == before[0]
    assert len(rows) == len(before) == injected.height + 1
    for j, col in enumerate(columns):
        cells = [r[j] for r in rows[1:]]
        if col.kind != "text":
            assert cells == [r[j] for r in before[1:]], col.key  # amounts untouched
            continue
        values = ["" if v is None else v for v in injected.get_column(col.key).to_list()]
        for cell, value in zip(cells, values, strict=True):
            assert not cell.startswith(_TRIGGER_START), (col.key, cell)
            escaped = value[:1] != "" and value[0] in FORMULA_TRIGGERS + ESCAPE
            assert cell == (ESCAPE + value if escaped else value), (col.key, cell, value)
            assert restore_formula(cell) == value
            if escaped:
                assert '"' + cell.replace('"', '""') + '"' in raw, (col.key, cell)


def test_every_text_cell_is_neutralised_and_amounts_stay_numbers(tmp_path: Path) -> None:
    report = _report(csv_rows=pl.concat([_detail()] * 5))  # every column gets every entry
    plain = tmp_path / "plain.csv"
    write_csv(report, plain)
    injected = inject(report.csv_rows, report.csv_columns)
    path = tmp_path / "r.csv"
    write_csv(_report(csv_rows=injected), path)
    check_neutralised_csv(path, report.csv_columns, injected, plain)
    for col in (c for c in report.csv_columns if c.kind == "text"):
        assert set(injected[col.key]) == set(INJECTIONS)
    # the amounts are still plain numbers, negative ones included, and add up to the fen
    read = pl.read_csv(path, infer_schema=False)
    amounts = read["收款金额（元）"].to_list()
    assert all(re.fullmatch(r"-?\d+\.\d{2}", a) for a in amounts) and "-123.45" in amounts
    assert sum(Decimal(a) for a in amounts) * 100 == report.csv_rows["amount_fen"].sum()
    assert read["数量"].to_list() == [str(q) for q in report.csv_rows["qty"]]
    # OWASP's examples, byte for byte
    raw = path.read_text(encoding="utf-8-sig")
    assert '"\'=1+2"";=1+2"' in raw and '"\'=1+2\'"" ;,=1+2"' in raw


def test_a_report_without_formula_like_text_keeps_its_bytes(tmp_path: Path) -> None:
    """Text that needs no neutralising is written exactly as polars' default quoting wrote it
    before: the bytes (and so the published reports' fingerprints) do not change."""
    rows = pl.DataFrame(
        {
            "t": ["a", "", None, "a,b", 'q"q', "x\ny", "x\ry", " lead", "0012", "A-1", "a;b"],
            "f": list(range(-5, 6)),
        }
    )
    cols = [Column("t", "文本"), Column("f", "金额", "fen")]
    path = tmp_path / "r.csv"
    write_csv(_report(csv_columns=cols, csv_rows=rows), path)
    before = rows.select(pl.col("t").alias("文本"), yuan_text(pl.col("f")).alias("金额"))
    assert path.read_bytes() == before.write_csv(include_bom=True, line_terminator="\n").encode()


_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from([*FORMULA_TRIGGERS, ESCAPE, '"', ",", ";", "\n"]),
    max_size=12,
)


@given(st.lists(_text, min_size=1, max_size=30))
def test_neutralising_is_safe_lossless_and_vectorised_alike(values: list[str]) -> None:
    outs = [neutralise_formula(v) for v in values]
    for value, out in zip(values, outs, strict=True):
        assert not out.startswith(_TRIGGER_START)
        assert restore_formula(out) == value
        assert out in (value, ESCAPE + value)
        assert (out != value) == (value[:1] != "" and value[0] in FORMULA_TRIGGERS + ESCAPE)
    frame = pl.DataFrame({"t": [*values, None]}, schema={"t": pl.String})
    assert frame.select(neutralised(pl.col("t"))).to_series().to_list() == [*outs, None]


@given(st.lists(_text, min_size=1, max_size=30))
def test_any_text_survives_the_csv_as_text(tmp_path_factory, values: list[str]) -> None:
    rows = pl.DataFrame({"t": values, "f": [-1234] * len(values)})
    cols = [Column("t", "文本"), Column("f", "金额", "fen")]
    path = tmp_path_factory.mktemp("csv") / "r.csv"
    write_csv(_report(csv_columns=cols, csv_rows=rows), path)
    cells = csv_cells(path)
    assert [restore_formula(r[0]) for r in cells[1:]] == values
    assert all(not r[0].startswith(_TRIGGER_START) and r[1] == "-12.34" for r in cells[1:])


def _formula_cells(path: Path) -> dict[str, list[str]]:
    """Every cell holding a formula (an ``<f>`` element in the sheet's XML), by sheet name."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    names = openpyxl.load_workbook(path, read_only=True).sheetnames
    out = {}
    with zipfile.ZipFile(path) as z:
        for i, name in enumerate(names, start=1):
            root = ElementTree.fromstring(z.read(f"xl/worksheets/sheet{i}.xml"))
            out[name] = [
                c.get("r") for c in root.iterfind(".//m:c", ns) if c.find("m:f", ns) is not None
            ]
    return out


def _ooxml(value: str) -> str:
    """A string as the workbook stores it and openpyxl reads it back: control characters other
    than tab and line feed escaped as ``_xHHHH_`` (Excel shows them decoded)."""
    return re.sub(r"[\x00-\x08\x0b-\x1f]", lambda m: f"_x{ord(m.group()):04X}_", value)


def check_xlsx_text_stays_text(path: Path, report: Report) -> None:
    """The workbook of a report whose text cells were injected: every text cell of the detail
    and exceptions sheets is a string cell holding the value exactly (no ``'``: a string cell
    is never a formula), and the only formulas are the totals row and the summary's figures."""
    wb = openpyxl.load_workbook(path)
    sheets = [("明细", report.detail_columns, report.detail)]
    if report.exceptions is not None:
        sheets.append(("异常", report.exceptions_columns, report.exceptions))
    for name, columns, frame in sheets:
        ws = wb[name]
        for j, col in enumerate(columns, start=1):
            if col.kind != "text":
                continue
            for i, value in enumerate(frame.get_column(col.key).to_list(), start=2):
                cell = ws.cell(i, j)
                if value is None or value == "":
                    assert cell.value in (None, ""), (name, col.key, i)
                    continue
                assert cell.data_type == "s", (name, col.key, cell.value)
                assert cell.value == _ooxml(value), (name, col.key, cell.value)
    formulas = _formula_cells(path)
    n = report.detail.height
    summed = [i for i, c in enumerate(report.detail_columns) if c.kind in ("int", "fen")]
    assert sorted(formulas["明细"]) == sorted(f"{xl_col(i)}{n + 2}" for i in summed)
    assert formulas.get("异常", []) == []
    assert all(not ref.startswith("A") for ref in formulas["汇总"])  # figures, never the keys


def xl_col(i: int) -> str:
    from xlsxwriter.utility import xl_col_to_name

    return xl_col_to_name(i)


def test_xlsx_writes_formula_like_text_as_text(tmp_path: Path) -> None:
    base = _report()
    detail = inject(base.detail, base.detail_columns)
    report = _report(detail=detail, exceptions=inject(base.exceptions, base.exceptions_columns))
    path = tmp_path / "r.xlsx"
    write_xlsx(report, path)
    check_xlsx_text_stays_text(path, report)
    ws = openpyxl.load_workbook(path)["汇总"]
    keys = {ws.cell(r, 1).value for r in range(1, ws.max_row + 1)}
    assert {_ooxml(k) for k in detail["account_name"]} - {""} <= keys  # the group keys, as text
