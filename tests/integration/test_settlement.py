"""Settlement end to end: a realistic month through `cardlake run`, scored against the simulator's
answer key, tied out against the statement files themselves, and the report files checked as
finance receives them (CSV bytes, XLSX formulas and cached values, PDF text)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from pipelines.lib.settlement import ReportKey, produce, read_index
from simulator.build import simulate
from simulator.config import SimConfig
from tests.conftest import cardlake, truth

pytestmark = pytest.mark.integration

#: a September that closes (the run goes on into October), realistic mess
MONTH = {"seed": 11, "start": dt.date(2026, 9, 1), "days": 32, "orders_per_day": 500, "skus": 120}

#: each injected channel anomaly and the (status, reason) it must be found with
EXPECTED = {
    "lost_callback": ("missing_in_shop", "lost_callback"),
    "duplicate_payment": ("duplicate_in_channel", "charged_again"),
    "amount_mismatch": ("amount_mismatch", "amount_differs"),
    "missing_statement_line": ("missing_in_channel", "not_in_statement"),
    "day_boundary": ("matched", "day_boundary"),
}


@dataclasses.dataclass(frozen=True)
class Month:
    sources: Path
    lake: Path
    run_output: str

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        con = duckdb.connect(str(self.lake / "warehouse.duckdb"), read_only=True)
        try:
            return con.sql(sql, params=params).pl()
        finally:
            con.close()


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    root = tmp_path_factory.mktemp("settlement")
    summary = simulate(SimConfig(**MONTH, mess="realistic"), root / "sources")
    run = cardlake("run", "--sources", str(summary.out), "--lake", str(root / "lake"))
    assert run.returncode == 0, run.stdout + run.stderr
    return Month(summary.out, root / "lake", run.stdout)


def test_the_daily_cycle_publishes_every_due_report(month: Month) -> None:
    assert "settlement reports:" in month.run_output and "0 held" in month.run_output
    days = month.query("select distinct statement_date from rpt_channel_settlement_daily")
    for channel in ("alipay", "wechat"):
        for (day,) in days.iter_rows():
            folder = ReportKey("channel", channel, day.isoformat()).folder(month.lake)
            index = read_index(folder)
            assert [v["version"] for v in index["versions"]] == [1], folder
            for name in index["versions"][0]["files"].values():
                assert (folder / name).stat().st_size > 0
    # September closed (October has data); October has not
    suppliers = month.query(
        "select supplier_code from rpt_supplier_payable where period = 'month' "
        "and period_start = date '2026-09-01'"
    )["supplier_code"]
    assert suppliers.len() >= 5
    for code in suppliers:
        assert read_index(ReportKey("supplier", code, "2026-09").folder(month.lake))["versions"]
    assert not (month.lake / "reports/settlement/supplier" / suppliers[0] / "2026-10").exists()


def _check_anomalies(m: Month) -> None:
    items = m.query("select * from rpt_channel_reconciliation").with_columns(
        native=pl.col("order_no").str.split("-").list.last()
    )
    answers = truth(m.sources, "anomalies")
    # one status per item: an order that is also a lost callback, or has no line at all, has no
    # shop payment or no line to compare amounts (or days) with
    outranked = set(
        answers.filter(pl.col("kind").is_in(["lost_callback", "missing_statement_line"]))["record"]
    )
    for kind, (status, reason) in EXPECTED.items():
        injected = set(answers.filter(pl.col("kind") == kind)["record"])
        if kind in ("amount_mismatch", "day_boundary"):
            injected -= outranked
        found = set(
            items.filter((pl.col("status") == status) & (pl.col("status_reason") == reason))[
                "native"
            ]
        )
        assert injected, f"the shop has no {kind}"
        assert found == injected, (kind, sorted(injected - found)[:5], sorted(found - injected)[:5])
    # zero false positives: every exception is an injected channel anomaly
    flagged = {
        kind: set(answers.filter(pl.col("kind") == kind)["record"])
        for kind in EXPECTED
        if kind != "day_boundary"
    }
    exceptions = items.filter(pl.col("status") != "matched")
    unexplained = exceptions.filter(~pl.col("native").is_in(list(set().union(*flagged.values()))))
    assert unexplained.is_empty(), unexplained.select("status", "status_reason", "order_no")
    # a day-boundary payment is matched in the next day's statement, not flagged in its own
    boundary = items.filter(pl.col("status_reason") == "day_boundary")
    assert (
        boundary.select((pl.col("statement_date") - pl.col("channel_at").dt.date()).dt.total_days())
        .to_series()
        .is_in([0, 1])
        .all()
    )
    # staff test orders are refused at ingestion on purpose, and their payments reconcile
    tests = set(answers.filter(pl.col("kind") == "test_order")["record"]) - outranked
    test_items = items.filter(pl.col("native").is_in(list(tests)))
    assert test_items["status_reason"].unique().to_list() == ["test_order"]
    # every statement in effect ties out to its own footer
    assert m.query("select bool_and(is_tied_out) as ok from rpt_channel_settlement_daily")["ok"][0]


def test_every_injected_channel_anomaly_is_found_and_nothing_else(month: Month) -> None:
    _check_anomalies(month)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Month:
    """Ten times the mess: re-sent and broken statements (rejected whole, then corrected), every
    boundary payment in the next day's file, a fifth of the order numbers decorated."""
    root = tmp_path_factory.mktemp("settlement-hostile")
    cfg = SimConfig(
        seed=5, start=dt.date(2026, 10, 1), days=8, orders_per_day=800, skus=120, mess="hostile"
    )
    summary = simulate(cfg, root / "sources")
    run = cardlake("run", "--sources", str(summary.out), "--lake", str(root / "lake"))
    assert run.returncode == 0, run.stdout + run.stderr
    return Month(summary.out, root / "lake", run.stdout)


def test_a_hostile_shop_is_reconciled_as_exactly(hostile: Month) -> None:
    assert (
        not truth(hostile.sources, "anomalies")
        .filter(pl.col("kind") == "statement_footer_mismatch")
        .is_empty()
    )
    _check_anomalies(hostile)


def _statement_text(path: Path, encoding: str) -> str:
    """As exported (``encoding``) or as a spreadsheet saved it again (the other one)."""
    raw = path.read_bytes()
    if encoding == "gbk" and raw.startswith(b"\xef\xbb\xbf"):
        return raw.decode("utf-8-sig")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return raw.decode("gbk")


def _alipay_footer(path: Path) -> tuple[str, int, int, int]:
    text = _statement_text(path, "gbk")
    account = re.search(r"#账号：\[(\d+)\]", text).group(1)
    # 商家实收共… in the older layout, 商家实收退款共… for refunds in today's
    pay = re.search(r"#交易合计：(\d+)笔，商家实收共(-?[\d.]+)元", text)
    ref = re.search(r"#退款合计：(\d+)笔，商家实收(?:退款)?共(-?[\d.]+)元", text)
    fen = lambda s: int(Decimal(s) * 100)  # noqa: E731
    return account, int(pay.group(1)) + int(ref.group(1)), fen(pay.group(2)), -fen(ref.group(2))


def _wechat_footer(path: Path) -> tuple[str, int, int, int, int]:
    lines = _statement_text(path, "utf-8-sig").splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("总交易单数"))
    head, row = lines[at].split(","), (v.lstrip("`") for v in lines[at + 1].split(","))
    # a spreadsheet pads the summary rows with empty cells
    values = {k: v for k, v in zip(head, row, strict=True) if k}
    gross = values.get("应结订单总金额") or values["总交易额"]
    refunds = values.get("退款总金额") or values["总退款金额"]
    fen = lambda s: int(Decimal(s) * 100)  # noqa: E731
    return (
        path.name,
        int(values["总交易单数"]),
        fen(gross),
        fen(refunds),
        fen(values["手续费总金额"]),
    )


def _effective_files(sources: Path, channel: str, day: dt.date) -> list[Path]:
    """The statement files in effect for a day: the last re-send of each account's file."""
    stamp = day.strftime("%Y%m%d")
    by_account: dict[str, list[Path]] = {}
    for path in sorted((sources / "statements" / channel).glob(f"*/*_{stamp}_*.csv")):
        by_account.setdefault(path.parent.name, []).append(path)
    return [sorted(paths, key=lambda p: (len(p.stem), p.stem))[-1] for paths in by_account.values()]


def test_reports_tie_out_to_the_statement_footers_and_the_marts(month: Month) -> None:
    day = dt.date(2026, 9, 17)
    marts = month.query(
        "select * from rpt_channel_settlement_daily where statement_date = ?", [day]
    )
    for channel in ("alipay", "wechat"):
        files = _effective_files(month.sources, channel, day)
        assert len(files) == 2
        if channel == "alipay":
            footers = [_alipay_footer(p) for p in files]
            fee = None
        else:
            footers = [_wechat_footer(p) for p in files]
            fee = sum(f[4] for f in footers)
        lines, gross, refunds = (sum(f[i] for f in footers) for i in (1, 2, 3))
        mine = marts.filter(pl.col("channel") == channel)
        assert int(mine["gross_fen"].sum()) == gross
        assert int(mine["refunds_fen"].sum()) == refunds
        assert int((mine["payment_lines"] + mine["refund_lines"]).sum()) == lines
        if fee is not None:
            assert int(mine["fee_fen"].sum()) == fee
        net = int(mine["net_fen"].sum())
        assert net == gross - refunds - int(mine["fee_fen"].sum())

        key = ReportKey("channel", channel, day.isoformat())
        entry = read_index(key.folder(month.lake))["versions"][-1]
        assert entry["figures"]["gross_fen"] == gross and entry["figures"]["net_fen"] == net
        for figure, sources in entry["checks"].items():
            assert len(set(sources.values())) == 1, (figure, sources)
        folder = key.folder(month.lake)
        # the CSV: every item, amounts in yuan, sums to the statement
        csv_bytes = (folder / entry["files"]["csv"]).read_bytes()
        assert csv_bytes.startswith(b"\xef\xbb\xbf")
        rows = pl.read_csv(csv_bytes[3:], infer_schema_length=0)
        paid = rows.filter(pl.col("类型") == "收款")["渠道金额（元）"].drop_nulls()
        assert sum(Decimal(v) for v in paid) * 100 == gross
        # the XLSX: summary totals are formulas over the detail, cached to the same figures
        book = openpyxl.load_workbook(folder / entry["files"]["xlsx"])
        values = openpyxl.load_workbook(folder / entry["files"]["xlsx"], data_only=True)
        assert book.sheetnames[:2] == ["汇总", "明细"] and book["明细"].freeze_panes == "A2"
        summary, cached = book["汇总"], values["汇总"]
        total_row = next(r for r in summary.iter_rows() if r[0].value == "合计")
        header_row = [
            r for r in summary.iter_rows(max_row=total_row[0].row) if r[0].value == "账户"
        ]
        headers = [c.value for c in header_row[-1]]
        got = {
            headers[i]: (cell.value, cached.cell(cell.row, cell.column).value)
            for i, cell in enumerate(total_row)
            if i
        }
        assert all(str(f).startswith("=SUM(") for f, _ in got.values())
        assert round(got["收款金额（元）"][1] * 100) == gross
        assert round(got["净结算（元）"][1] * 100) == net
        # the PDF: the totals in words a person can read, Chinese included
        text = subprocess.run(
            ["pdftotext", "-layout", str(folder / entry["files"]["pdf"]), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "渠道对账结算单" in text and "合计" in text
        assert f"{gross // 100:,}.{gross % 100:02d}" in text
        assert f"{net // 100:,}.{net % 100:02d}" in text
        pages = subprocess.run(
            ["pdfinfo", str(folder / entry["files"]["pdf"])],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert int(re.search(r"Pages:\s+(\d+)", pages).group(1)) <= 2


def test_supplier_payable_is_delivered_cost_less_charge_backs_to_the_fen(month: Month) -> None:
    keys = truth(month.sources, "keys")
    refunds = truth(month.sources, "refunds")
    local_day = lambda c: pl.from_epoch(pl.col(c) + 8 * 3600).dt.date()  # noqa: E731
    in_sept = lambda c: local_day(c).dt.month() == 9  # noqa: E731
    delivered = (
        keys.filter(pl.col("order_idx").is_not_null() & pl.col("sold_at").is_not_null())
        .filter(in_sept("sold_at"))
        .group_by("supplier_code")
        .agg(delivered=pl.col("cost_fen").sum())
    )
    # only the main shop records refund reasons (the substation keeps no refund records)
    invalid = refunds.filter(
        (pl.col("reason") == "invalid_key") & (pl.col("status") == 1) & (pl.col("shop") == "main")
    ).filter(in_sept("succeeded_at"))
    charged = (
        keys.filter(pl.col("is_defective"))
        .join(invalid.select("order_idx"), on="order_idx")
        .group_by("supplier_code")
        .agg(charged=pl.col("cost_fen").sum())
    )
    expected = delivered.join(charged, on="supplier_code", how="left").with_columns(
        pl.col("charged").fill_null(0)
    )
    marts = month.query(
        "select supplier_code, delivered_cost_fen, chargeback_cost_fen, payable_fen "
        "from rpt_supplier_payable where period = 'month' and period_start = date '2026-09-01'"
    )
    both = expected.join(marts, on="supplier_code", how="full", coalesce=True)
    assert (both["delivered"] == both["delivered_cost_fen"]).all(), both
    assert (both["charged"] == both["chargeback_cost_fen"]).all(), both
    assert (both["payable_fen"] == both["delivered"] - both["charged"]).all()
    # the report: its figures are the mart's, its workbook's totals are formulas over the detail
    top = marts.sort("payable_fen", descending=True).row(0, named=True)
    key = ReportKey("supplier", top["supplier_code"], "2026-09")
    entry = read_index(key.folder(month.lake))["versions"][-1]
    assert entry["figures"]["payable_fen"] == top["payable_fen"]
    assert entry["checks"]["delivered_cost_fen"]["fct_key_movements"] == top["delivered_cost_fen"]
    values = openpyxl.load_workbook(key.folder(month.lake) / entry["files"]["xlsx"], data_only=True)
    total = next(r for r in values["汇总"].iter_rows() if r[0].value == "合计")
    assert round(total[-1].value * 100) == top["payable_fen"]


def test_no_text_of_any_report_reaches_finance_as_a_formula(month: Month, tmp_path: Path) -> None:
    """Both kinds of report as the cycle builds them, every cell of every text column replaced by
    an injection payload (OWASP's CSV Injection and relatives): the CSV neutralises each one (a
    leading ' and quoted, the value recoverable) and writes the amounts as before; the workbook
    keeps each one a string cell, never a formula."""
    from pipelines.lib.publish import open_warehouse
    from pipelines.lib.report_files import write_csv
    from pipelines.lib.report_xlsx import write_xlsx
    from pipelines.lib.settlement_content import build_report
    from tests.unit.test_report_files import (
        INJECTIONS,
        check_neutralised_csv,
        check_xlsx_text_stays_text,
        inject,
    )

    supplier = month.query(
        "select supplier_code from rpt_supplier_payable where period = 'month' "
        "and period_start = date '2026-09-01' order by payable_fen desc limit 1"
    )["supplier_code"][0]
    keys = [
        ReportKey("channel", "alipay", "2026-09-17"),
        ReportKey("channel", "wechat", "2026-09-17"),
        ReportKey("supplier", supplier, "2026-09"),
    ]
    con = open_warehouse(month.lake)
    try:
        reports = {key: build_report(con, key) for key in keys}
    finally:
        con.close()
    assert {key.kind for key in reports} == {"channel", "supplier"}  # every kind of report
    for key, report in reports.items():
        texts = [c.key for c in report.csv_columns if c.kind == "text"]
        assert len(texts) >= 5 and report.csv_rows.height >= len(INJECTIONS), (key, texts)
        plain = tmp_path / f"{key.stem(1)}.plain.csv"
        write_csv(report, plain)
        rows = inject(report.csv_rows, report.csv_columns)
        for column in texts:  # every payload in every text column
            assert set(rows[column]) == set(INJECTIONS), (key, column)
        path = tmp_path / f"{key.stem(1)}.csv"
        write_csv(dataclasses.replace(report, csv_rows=rows), path)
        check_neutralised_csv(path, report.csv_columns, rows, plain)

        injected = dataclasses.replace(
            report,
            detail=inject(report.detail, report.detail_columns),
            exceptions=None
            if report.exceptions is None
            else inject(report.exceptions, report.exceptions_columns),
        )
        xlsx = tmp_path / f"{key.stem(1)}.xlsx"
        write_xlsx(injected, xlsx)
        check_xlsx_text_stays_text(xlsx, injected)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".csv", ".xlsx", ".pdf")
    }


def test_the_same_inputs_give_the_same_report_bytes(month: Month, tmp_path: Path) -> None:
    key = ReportKey("channel", "wechat", "2026-09-09")
    folder = key.folder(month.lake)
    before = _digests(folder)
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    # unchanged data: producing again writes nothing new
    [again] = produce(month.lake, keys=[key])
    assert again.status == "unchanged" and again.version == 1
    # and from scratch (the report folder gone), the same bytes
    shutil.rmtree(folder)
    [fresh] = produce(month.lake, keys=[key])
    assert fresh.status == "published" and fresh.version == 1
    assert _digests(folder) == before
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)


def test_cli_fetches_and_regenerates_one_report(month: Month, tmp_path: Path) -> None:
    out = tmp_path / "download"
    got = cardlake(
        "report", "settlement", "--channel", "alipay", "--day", "2026-09-20",
        "--lake", str(month.lake), "--out", str(out),
    )  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    assert "unchanged v1" in got.stdout
    assert sorted(p.suffix for p in out.iterdir()) == [".csv", ".pdf", ".xlsx"]
    code = json.loads(
        (ReportKey("supplier", "S01", "2026-09").folder(month.lake) / "index.json").read_text()
    )["versions"][0]["version"]
    assert code == 1
    got = cardlake(
        "report", "settlement", "--supplier", "S01", "--month", "2026-09", "--version", "1",
        "--lake", str(month.lake),
    )  # fmt: skip
    assert got.returncode == 0 and "payable_S01_2026-09_v1.pdf" in got.stdout
    not_due = cardlake(
        "report", "settlement", "--channel", "alipay", "--day", "2026-12-01",
        "--lake", str(month.lake),
    )  # fmt: skip
    assert not_due.returncode == 2 and "not due" in not_due.stderr


def _resend(original: Path, edit) -> Path:
    """A corrected re-send of an Alipay statement (``<name>_v2.csv``), its footer recomputed."""
    lines = original.read_bytes().decode("gbk").split("\r\n")
    body = [i for i, ln in enumerate(lines) if ln and not ln.startswith("#") and "," in ln][1:]
    lines = edit(lines, body)
    pays = [ln.split(",") for ln in lines if ln and not ln.startswith("#") and ",交易," in ln]
    total = sum(Decimal(r[12]) for r in pays)
    lines = [
        re.sub(
            r"#交易合计：\d+笔，商家实收共-?[\d.]+元",
            f"#交易合计：{len(pays)}笔，商家实收共{total:.2f}元",
            ln,
        )
        for ln in lines
    ]
    base = re.sub(r"\(\d+\)$", "", original.stem)  # a re-send already there: `x(1).csv`
    target = original.with_name(f"{base}_v2.csv")
    target.write_bytes("\r\n".join(lines).encode("gbk"))
    return target


@pytest.fixture
def month_copy(month: Month, tmp_path: Path) -> Month:
    shutil.copytree(month.sources, tmp_path / "sources")
    shutil.copytree(month.lake, tmp_path / "lake")
    return Month(tmp_path / "sources", tmp_path / "lake", "")


def test_late_data_publishes_a_new_version_and_keeps_the_old(month_copy: Month) -> None:
    day = dt.date(2026, 9, 12)
    key = ReportKey("channel", "alipay", day.isoformat())
    [original] = [
        p for p in _effective_files(month_copy.sources, "alipay", day) if "0187" in p.name
    ]
    dropped = {}

    def drop_one_payment(lines, body):
        i = next(i for i in body if ",交易," in lines[i])
        dropped["txn"] = lines[i].split(",")[0].strip()
        return lines[:i] + lines[i + 1 :]

    _resend(original, drop_one_payment)
    run = cardlake(
        "run", "--sources", str(month_copy.sources), "--lake", str(month_copy.lake),
        "--start", day.isoformat(), "--end", day.isoformat(),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    index = read_index(key.folder(month_copy.lake))
    assert [v["version"] for v in index["versions"]] == [1, 2]
    v1, v2 = index["versions"]
    assert v2["figures"]["payment_lines"] == v1["figures"]["payment_lines"] - 1
    assert v2["figures"]["exception_items"] == v1["figures"]["exception_items"] + 1
    assert "收款笔数" in v2["change_summary"] and "→" in v2["change_summary"]
    for entry in (v1, v2):  # the earlier version is kept, whole
        for name in entry["files"].values():
            assert (key.folder(month_copy.lake) / name).exists()
    items = month_copy.query(
        "select status, status_reason from rpt_channel_reconciliation "
        "where statement_date = ? and order_no is not null and channel_txn_no is null "
        "and status = 'missing_in_channel'",
        [day],
    )
    assert items.height >= 1
    text = subprocess.run(
        ["pdftotext", str(key.folder(month_copy.lake) / v2["files"]["pdf"]), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "v2" in text and "取代 v1" in text.replace("\n", "")
    # the other channel's report of that day did not change
    assert (
        len(
            read_index(ReportKey("channel", "wechat", day.isoformat()).folder(month_copy.lake))[
                "versions"
            ]
        )
        == 1
    )


def test_a_report_that_does_not_tie_out_is_held_not_published(month_copy: Month) -> None:
    day = dt.date(2026, 9, 14)
    key = ReportKey("channel", "alipay", day.isoformat())
    [original] = [
        p for p in _effective_files(month_copy.sources, "alipay", day) if "0187" in p.name
    ]

    def break_a_date(lines, body):
        i = next(i for i in body if ",交易," in lines[i])
        cells = lines[i].split(",")
        cells[5] = "2026-13-45 25:61:00"  # the line is quarantined; the footer still counts it
        return [*lines[:i], ",".join(cells), *lines[i + 1 :]]

    _resend(original, break_a_date)
    run = cardlake(
        "run", "--sources", str(month_copy.sources), "--lake", str(month_copy.lake),
        "--start", day.isoformat(), "--end", day.isoformat(),
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "held" in run.stdout and "does not tie out" in run.stdout
    folder = key.folder(month_copy.lake)
    assert [v["version"] for v in read_index(folder)["versions"]] == [1]
    held = json.loads((folder / "held.json").read_text())
    assert any("statement_footers" in p for p in held["problems"])
    # the quarantine says why the line is missing
    assert month_copy.query(
        "select sum(rows_flagged) as n from dq_daily where business_date = ? "
        "and subject like 'alipay%'",
        [day],
    )["n"][0]


def test_dagster_sensor_asks_for_what_is_due_and_the_asset_produces_it(month_copy: Month) -> None:
    import dagster as dg

    from pipelines.defs.reports.assets import settlement_channel_reports
    from pipelines.defs.reports.sensors import settlement_reports_sensor
    from pipelines.resources import LakeResource

    lake = LakeResource(root=str(month_copy.lake))

    def evaluate() -> list:
        with dg.build_sensor_context(resources={"lake": lake}) as ctx:
            return list(settlement_reports_sensor(ctx))

    def skipped(result: list) -> bool:
        return len(result) == 1 and isinstance(result[0], dg.SkipReason)

    # cardlake run produced (and checked) every due report: nothing to ask for
    assert skipped(evaluate())
    key = ReportKey("channel", "wechat", "2026-09-21")
    shutil.rmtree(key.folder(month_copy.lake))
    [request] = evaluate()
    assert request.partition_key == "2026-09-21" and request.job_name == "settlement_daily_job"
    assert request.run_key == evaluate()[0].run_key  # the same state asks with the same key
    result = dg.materialize(
        [settlement_channel_reports],
        partition_key=request.partition_key,
        resources={"lake": lake},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert "channel wechat 2026-09-21 v1" in meta["published"].value
    assert read_index(key.folder(month_copy.lake))["versions"][0]["version"] == 1
    assert skipped(evaluate())
