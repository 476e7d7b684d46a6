"""What a settlement report holds: which reports there are (``ReportKey``: a channel's statement
day, a supplier's month), and each one built from the serving file (``build``) with its figures,
the checks it must pass to tie out (``tie_out``) and the digests of the mart partitions it was
built from. ``settlement`` decides when a report is due and publishes its versions."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from pipelines.lib.lake import Lake
from pipelines.lib.report_model import Column, Measure, Report, summary_table

#: where the settlement reports live, under the lake's reports zone
SETTLEMENT = "settlement"
Kind = Literal["channel", "supplier"]
#: a supplier code as the lake spells it (its folder under sources/suppliers/, e.g. S04): ASCII
#: letters, digits, ``_`` and ``-``, beginning with a letter or digit, so never a path or a dot
SUPPLIER_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")

STATUS_LABELS = {
    "matched": "已匹配",
    "amount_mismatch": "金额不符",
    "missing_in_channel": "渠道缺失",
    "missing_in_shop": "店铺缺失",
    "duplicate_in_channel": "渠道重复",
}
REASON_LABELS = {
    "as_expected": "正常",
    "day_boundary": "跨日：前一日完成，计入本账单",
    "no_shop_refund_record": "分站无退款记录，按订单核对",
    "test_order": "店铺测试订单（入湖时隔离）",
    "amount_differs": "金额不一致",
    "exceeds_order": "退款超过订单金额",
    "not_in_statement": "对账单中没有此笔",
    "lost_callback": "回调丢失：店铺显示未支付",
    "unknown_order": "店铺无此订单",
    "order_quarantined": "店铺订单行入湖时被隔离",
    "unknown_refund": "店铺无此退款",
    "not_succeeded_in_shop": "店铺退款未成功",
    "charged_again": "重复扣款",
    "refunded_again": "重复退款",
}
ITEM_LABELS = {"payment": "收款", "refund": "退款"}

#: the channel report's figures, in the order the change summary lists them
CHANNEL_FIGURES = {
    "payment_lines": "收款笔数",
    "gross_fen": "收款金额",
    "refund_lines": "退款笔数",
    "refunds_fen": "退款金额",
    "fee_fen": "手续费（渠道）",
    "expected_fee_fen": "手续费（按费率）",
    "net_fen": "净结算",
    "exception_items": "异常笔数",
}
SUPPLIER_FIGURES = {
    "keys_delivered": "交付卡密数",
    "delivered_cost_fen": "交付成本",
    "keys_charged_back": "退单卡密数",
    "chargeback_cost_fen": "退单成本",
    "payable_fen": "应付金额",
}


class SettlementError(RuntimeError):
    """A report cannot be produced (not due, unknown subject, nothing published yet)."""


def reports_root(lake: Path) -> Path:
    """The lake's settlement reports folder: every report folder and file is inside it."""
    return Lake.of(lake).reports / SETTLEMENT


def known_channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The channels of the published marts (``dim_channels``, from the seed
    ``channel_accounts``): those a channel report can be asked for, sorted."""
    rows = con.execute("select distinct channel from dim_channels order by 1").fetchall()
    return [c for (c,) in rows]


def known_suppliers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The supplier codes of the published marts (``dim_suppliers``: the supplier register and
    every supplier a delivery file came from): those a supplier report can be asked for."""
    rows = con.execute("select supplier_code from dim_suppliers order by 1").fetchall()
    return [c for (c,) in rows]


@dataclass(frozen=True, order=True)
class ReportKey:
    """One report: a channel's statement day or a supplier's calendar month."""

    kind: Kind
    subject: str  # channel code (alipay, wechat) or supplier code
    period: str  # YYYY-MM-DD (channel) or YYYY-MM (supplier)

    def folder(self, lake: Path) -> Path:
        return reports_root(lake) / self.kind / self.subject / self.period

    def stem(self, version: int) -> str:
        prefix = "settlement" if self.kind == "channel" else "payable"
        return f"{prefix}_{self.subject}_{self.period}_v{version}"

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} {self.period}"


@dataclass
class Built:
    report_for: object  # version -> Report (the version number is printed in the files)
    figures: dict[str, int]
    checks: dict[str, dict[str, int]]  # figure -> {source: value}; tied out when all agree
    sources: dict[str, str]  # the mart partitions it was built from -> their digests
    identity: object  # what else the content depends on (account names and rates, ...)
    problems: list[str] = field(default_factory=list)  # found while building, before the checks


# --- building ------------------------------------------------------------------------------------


def _frame(con: duckdb.DuckDBPyConnection, query: str, params: list) -> pl.DataFrame:
    return con.sql(query, params=params).pl()


def _digests(con, marts: list[str], first: str, last: str) -> dict[str, str]:
    rows = con.execute(
        f"""
        select mart, business_date, row_count, content_hash
        from _publication_partitions
        where mart in ({", ".join("?" for _ in marts)})
          and business_date between cast(? as date) and cast(? as date)
        order by mart, business_date
        """,
        [*marts, first, last],
    ).fetchall()
    return {f"{m}/{d}": f"{n}:{h}" for m, d, n, h in rows}


def source_digests(con: duckdb.DuckDBPyConnection, key: ReportKey) -> dict[str, str]:
    """The publication digests of the mart partitions a report is built from: when they change,
    the report may have (the sensor's trigger)."""
    if key.kind == "channel":
        marts = ["rpt_channel_reconciliation", "rpt_channel_settlement_daily"]
        return _digests(con, marts, key.period, key.period)
    first = dt.date.fromisoformat(key.period + "-01")
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    marts = ["rpt_supplier_payable_lines", "rpt_supplier_payable"]
    return _digests(con, marts, first.isoformat(), last.isoformat())


def _channel(con, key: ReportKey) -> Built:
    day = dt.date.fromisoformat(key.period)
    accounts = _frame(
        con,
        "select account_key, account_name, fee_rate_bp, channel_name from dim_channels "
        "where channel = ? order by account_key",
        [key.subject],
    )
    if accounts.is_empty():
        raise SettlementError(f"unknown channel {key.subject!r}")
    channel_name = accounts["channel_name"][0]
    items = _frame(
        con,
        """
        select * exclude (business_date)
        from rpt_channel_reconciliation
        where channel = ? and statement_date = ?
        order by account_key, item_type, channel_at nulls last, shop_at, item_id
        """,
        [key.subject, day],
    )
    marts = _frame(
        con,
        "select * from rpt_channel_settlement_daily where channel = ? and statement_date = ? "
        "order by account_key",
        [key.subject, day],
    )
    if marts.height != accounts.height:
        raise SettlementError(
            f"{key}: not due, statements landed for {marts['account_key'].to_list()} of "
            f"{accounts['account_key'].to_list()}"
        )
    labelled = items.with_columns(
        item_label=pl.col("item_type").replace_strict(ITEM_LABELS),
        status_label=pl.col("status").replace_strict(STATUS_LABELS),
        reason_label=pl.col("status_reason").replace_strict(REASON_LABELS, default=None),
        is_payment=pl.col("item_type") == "payment",
        in_channel=pl.col("channel_amount_fen").is_not_null(),
    )
    pay, ref, chan = pl.col("is_payment"), ~pl.col("is_payment"), pl.col("in_channel")
    amount = pl.col("channel_amount_fen").fill_null(0)
    shop_amount = pl.col("shop_amount_fen").fill_null(0)
    detail = (
        labelled.group_by(
            "account_key", "account_name", "status", "status_label", "status_reason", "reason_label"
        )
        .agg(
            items=pl.len(),
            payment_lines=(pay & chan).sum(),
            gross_fen=pl.when(pay).then(amount).otherwise(0).sum(),
            refund_lines=(ref & chan).sum(),
            refunds_fen=pl.when(ref).then(amount).otherwise(0).sum(),
            fee_fen=pl.col("fee_fen").fill_null(0).sum(),
            expected_fee_fen=pl.col("expected_fee_fen").fill_null(0).sum(),
            shop_gross_fen=pl.when(pay).then(shop_amount).otherwise(0).sum(),
            shop_refunds_fen=pl.when(ref).then(shop_amount).otherwise(0).sum(),
        )
        .with_columns(
            net_fen=pl.col("gross_fen") - pl.col("refunds_fen") - pl.col("fee_fen"),
            exception_items=pl.when(pl.col("status") == "matched")
            .then(0)
            .otherwise(pl.col("items")),
        )
        .with_columns(pl.exclude(pl.String).cast(pl.Int64))
        .sort("account_key", "status", "status_reason")
    )
    exceptions = labelled.filter(pl.col("status") != "matched").with_columns(
        at=pl.coalesce("channel_at", "shop_at")
    )
    csv_rows = labelled.with_columns(statement_date=pl.col("statement_date").cast(pl.String))
    report_for = _channel_report(key, channel_name, accounts, detail, exceptions, csv_rows, marts)
    figures = {
        f: int(detail[f].sum())
        for f in CHANNEL_FIGURES
        if f in detail.columns  # every figure is a detail column
    }
    stated_fee = marts["stated_fee_fen"]
    unstated = marts.filter(pl.col("stated_gross_fen").is_null())["account_key"].to_list()
    early = (
        [
            f"statement footers of {unstated} were not recorded (landed by an earlier version): "
            f"land the day again, `cardlake run --start {key.period} --end {key.period}`"
        ]
        if unstated
        else []
    )
    checks = {
        "gross_fen": {
            "detail": figures["gross_fen"],
            "rpt_channel_settlement_daily": int(marts["gross_fen"].sum()),
            "statement_footers": int(marts["stated_gross_fen"].sum()),
        },
        "refunds_fen": {
            "detail": figures["refunds_fen"],
            "rpt_channel_settlement_daily": int(marts["refunds_fen"].sum()),
            "statement_footers": int(marts["stated_refunds_fen"].sum()),
        },
        "fee_fen": {
            "detail": figures["fee_fen"],
            "rpt_channel_settlement_daily": int(marts["fee_fen"].sum()),
            **(
                {"statement_footers": int(stated_fee.sum())} if stated_fee.null_count() == 0 else {}
            ),
        },
        "net_fen": {
            "detail": figures["net_fen"],
            "rpt_channel_settlement_daily": int(marts["net_fen"].sum()),
            "gross − refunds − fees": figures["gross_fen"]
            - figures["refunds_fen"]
            - figures["fee_fen"],
        },
        "lines": {
            "detail": figures["payment_lines"] + figures["refund_lines"],
            "reconciliation items in a statement": int(labelled["in_channel"].sum()),
            "statement_footers": int(marts["stated_lines"].sum()),
        },
        "exception_items": {
            "detail": figures["exception_items"],
            "rpt_channel_settlement_daily": int(marts["exception_items"].sum()),
            "exception rows": exceptions.height,
        },
    }
    sources = source_digests(con, key)
    return Built(
        report_for,
        figures,
        checks,
        sources,
        accounts.to_dicts(),
        early,
    )


def _channel_report(key, channel_name, accounts, detail, exceptions, csv_rows, marts):
    accounts_text = "、".join(
        f"{r['account_name']}（费率 {r['fee_rate_bp'] / 100:.2f}%）" for r in accounts.to_dicts()
    )
    files = int(marts["statement_files"].sum())
    day = dt.date.fromisoformat(key.period)
    detail_columns = [
        Column("account_name", "账户"),
        Column("status_label", "状态"),
        Column("reason_label", "原因"),
        Column("items", "笔数", "int"),
        Column("payment_lines", "收款笔数", "int"),
        Column("gross_fen", "收款金额（元）", "fen"),
        Column("refund_lines", "退款笔数", "int"),
        Column("refunds_fen", "退款金额（元）", "fen"),
        Column("fee_fen", "手续费·渠道（元）", "fen"),
        Column("expected_fee_fen", "手续费·按费率（元）", "fen"),
        Column("net_fen", "净结算（元）", "fen"),
        Column("shop_gross_fen", "店铺收款（元）", "fen"),
        Column("shop_refunds_fen", "店铺退款（元）", "fen"),
        Column("exception_items", "异常笔数", "int"),
    ]
    measures = [
        Measure("收款笔数", "payment_lines", "int"),
        Measure("收款金额（元）", "gross_fen"),
        Measure("退款笔数", "refund_lines", "int"),
        Measure("退款金额（元）", "refunds_fen"),
        Measure("手续费·渠道（元）", "fee_fen"),
        Measure("手续费·按费率（元）", "expected_fee_fen"),
        Measure("净结算（元）", "net_fen"),
        Measure("异常笔数", "exception_items", "int"),
    ]
    item_columns = [
        Column("account_name", "账户"),
        Column("item_label", "类型"),
        Column("status_label", "状态"),
        Column("reason_label", "原因"),
        Column("order_no", "订单号"),
        Column("merchant_order_no", "商户订单号"),
        Column("channel_txn_no", "渠道交易号"),
        Column("refund_no", "退款单号"),
        Column("shop_amount_fen", "店铺金额（元）", "fen"),
        Column("channel_amount_fen", "渠道金额（元）", "fen"),
        Column("difference_fen", "差额（元）", "fen"),
    ]
    exception_columns = [
        c for c in item_columns if c.key not in ("merchant_order_no", "refund_no")
    ] + [Column("at", "时间", "datetime")]
    # one line per item and nothing a line repeats from the report (the day, the file): at a
    # million orders a day the CSV is the report's biggest cost
    csv_columns = [
        *item_columns,
        Column("fee_fen", "手续费（元）", "fen"),
        Column("expected_fee_fen", "按费率手续费（元）", "fen"),
        Column("status", "状态代码"),
        Column("shop_at", "店铺时间", "datetime"),
        Column("channel_at", "渠道时间", "datetime"),
    ]
    notes = [
        "净结算 = 收款金额 − 退款金额 − 手续费（渠道）；手续费按费率 = 每笔金额 × 合同费率，四舍五入到分。",
        "状态：已匹配 / 金额不符 / 渠道缺失（店铺有、对账单无）/ 店铺缺失（对账单有、店铺无）/ 渠道重复。",
        "跨日：前一日 23:58 之后完成、未在当日账单中的交易，在次日账单中核对。",
        "勾稽：明细合计 = 汇总 = 结算数据集 rpt_channel_settlement_daily = 对账单页脚合计（已核对）。",
        f"对账单文件 {files} 个（{len(accounts)} 个账户）；逐笔清单（含已匹配）见同名 CSV。",
    ]

    def build(version: int, change: str) -> Report:
        return Report(
            title=f"{channel_name} 渠道对账结算单",
            subtitle=(
                f"{key.subject.capitalize()} statement check and settlement · statement day "
                f"{key.period} · v{version}"
            ),
            facts=[
                ("渠道", f"{channel_name}（{key.subject}）"),
                ("账单日", key.period),
                ("账户", accounts_text),
                ("版本", f"v{version}" + (f"（{change}）" if change else "")),
                ("勾稽", "通过：明细 = 汇总 = 数据集 = 对账单页脚"),
            ],
            detail_columns=detail_columns,
            detail=detail,
            group_key="account_name",
            group_header="账户",
            measures=measures,
            csv_columns=csv_columns,
            csv_rows=csv_rows,
            exceptions_columns=exception_columns,
            exceptions=exceptions,
            notes=notes,
            as_of=dt.datetime.combine(day + dt.timedelta(days=1), dt.time()),
        )

    return build


def _supplier(con, key: ReportKey) -> Built:
    month = dt.date.fromisoformat(key.period + "-01")
    row = _frame(
        con,
        "select * from rpt_supplier_payable where supplier_code = ? and period = 'month' "
        "and period_start = ?",
        [key.subject, month],
    )
    if row.is_empty():
        raise SettlementError(f"{key}: no payable for this supplier and month")
    if not row["is_closed"][0]:
        raise SettlementError(f"{key}: not due, the month has not closed yet")
    end = row["period_end"][0]
    lines = _frame(
        con,
        """
        select strftime(l.business_date, '%Y-%m-%d') as day,
               coalesce(p.category_name, '未归类') as category, l.sku_code,
               p.canonical_name as product, l.batch_no,
               l.keys_delivered, l.delivered_cost_fen, l.keys_charged_back,
               l.chargeback_cost_fen, l.payable_fen
        from rpt_supplier_payable_lines l
        left join dim_products p on l.sku_code = p.sku_code
        where l.supplier_code = ? and l.business_date between ? and ?
        order by day, l.batch_no nulls last, l.sku_code nulls last
        """,
        [key.subject, month, end],
    )
    # the workbook's detail: each SKU over the month, however long the month (the CSV keeps
    # each day and batch); at 100,000 SKUs a day × batch workbook would run to hundreds of
    # thousands of rows per supplier and month
    batches = (
        lines.group_by("category", "sku_code", "product")
        .agg(
            batches=pl.col("batch_no").n_unique().cast(pl.Int64),
            first_day=pl.col("day").min(),
            last_day=pl.col("day").max(),
            **{f: pl.col(f).sum().cast(pl.Int64) for f in SUPPLIER_FIGURES},
        )
        .sort("category", "sku_code", nulls_last=True)
    )
    days = con.execute(
        "select sum(delivered_cost_fen)::bigint, sum(chargeback_cost_fen)::bigint, "
        "sum(payable_fen)::bigint from rpt_supplier_payable where supplier_code = ? "
        "and period = 'day' and period_start between ? and ?",
        [key.subject, month, end],
    ).fetchone()
    moved = con.execute(
        "select coalesce(sum(cost_fen), 0)::bigint, count(*) from fct_key_movements "
        "where movement = 'delivered' and supplier_code = ? and business_date between ? and ?",
        [key.subject, month, end],
    ).fetchone()
    name = row["supplier_name"][0] or key.subject
    figures = {f: int(lines[f].sum()) for f in SUPPLIER_FIGURES}
    mart = row.to_dicts()[0]
    checks = {
        "delivered_cost_fen": {
            "detail": figures["delivered_cost_fen"],
            "rpt_supplier_payable (month)": int(mart["delivered_cost_fen"]),
            "rpt_supplier_payable (days)": int(days[0] or 0),
            "fct_key_movements": int(moved[0]),
        },
        "keys_delivered": {
            "detail": figures["keys_delivered"],
            "rpt_supplier_payable (month)": int(mart["keys_delivered"]),
            "fct_key_movements": int(moved[1]),
        },
        "chargeback_cost_fen": {
            "detail": figures["chargeback_cost_fen"],
            "rpt_supplier_payable (month)": int(mart["chargeback_cost_fen"]),
            "rpt_supplier_payable (days)": int(days[1] or 0),
        },
        "payable_fen": {
            "detail": figures["payable_fen"],
            "rpt_supplier_payable (month)": int(mart["payable_fen"]),
            "delivered − charged back": figures["delivered_cost_fen"]
            - figures["chargeback_cost_fen"],
        },
    }
    amounts = [
        Column("keys_delivered", "交付卡密数", "int"),
        Column("delivered_cost_fen", "交付成本（元）", "fen"),
        Column("keys_charged_back", "退单卡密数", "int"),
        Column("chargeback_cost_fen", "退单成本（元）", "fen"),
        Column("payable_fen", "应付金额（元）", "fen"),
    ]
    product = [
        Column("category", "品类"),
        Column("sku_code", "SKU"),
        Column("product", "商品"),
        Column("batch_no", "批次号"),
    ]
    detail_columns = [
        *product[:3],
        Column("batches", "批次数", "int"),
        Column("first_day", "首次交付/退单"),
        Column("last_day", "末次交付/退单"),
        *amounts,
    ]
    csv_columns = [Column("day", "日期"), *product, *amounts]
    measures = [
        Measure("交付卡密数", "keys_delivered", "int"),
        Measure("交付成本（元）", "delivered_cost_fen"),
        Measure("退单卡密数", "keys_charged_back", "int"),
        Measure("退单成本（元）", "chargeback_cost_fen"),
        Measure("应付金额（元）", "payable_fen"),
    ]
    notes = [
        "应付金额 = 本期交付卡密成本 − 本期退单卡密成本（退款原因为卡密无效，按退款成功日计入）。",
        "退单卡密：按退款金额占订单金额的比例折算的卡密数（至少 1 张），按卡密顺序取，各按其批次单价计。",
        "勾稽：明细合计 = 汇总 = rpt_supplier_payable（月、日）= fct_key_movements 交付成本（已核对）。",
        "明细按 SKU 汇总全月；逐日、逐批次明细见同名 CSV。",
    ]

    def build(version: int, change: str) -> Report:
        return Report(
            title=f"供应商应付结算单 · {name}",
            subtitle=f"Supplier payable statement · {key.subject} · {key.period} · v{version}",
            facts=[
                ("供应商", f"{name}（{key.subject}）"),
                ("结算期间", f"{month.isoformat()} 至 {end.isoformat()}"),
                ("版本", f"v{version}" + (f"（{change}）" if change else "")),
                ("勾稽", "通过：明细 = 汇总 = 数据集 = 卡密出库成本"),
            ],
            detail_columns=detail_columns,
            detail=batches,
            group_key="category",
            group_header="品类",
            measures=measures,
            csv_columns=csv_columns,
            csv_rows=lines,
            notes=notes,
            as_of=dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
        )

    sources = source_digests(con, key)
    return Built(build, figures, checks, sources, [name, mart])


def tie_out(built: Built, report: Report) -> list[str]:
    """Why a built report does not tie out (empty: it does): the problems found while building,
    every figure whose sources disagree, and every total the workbook's formulas compute that
    differs from the report's figure."""
    out = list(built.problems)
    for figure, values in built.checks.items():
        if len(set(values.values())) > 1:
            out.append(f"{figure}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    totals = summary_table(report).row(-1, named=True)
    for measure in report.measures:
        if (
            measure.detail_key in built.figures
            and totals.get(measure.header) != built.figures[measure.detail_key]
        ):
            out.append(
                f"summary {measure.header}: {totals.get(measure.header)} ≠ detail "
                f"{built.figures[measure.detail_key]}"
            )
    return out


def build(con: duckdb.DuckDBPyConnection, key: ReportKey) -> Built:
    """What the report ``key`` holds, from the publication ``con`` reads."""
    return _channel(con, key) if key.kind == "channel" else _supplier(con, key)


def build_report(con: duckdb.DuckDBPyConnection, key: ReportKey, version: int = 1) -> Report:
    """The ``Report`` a version of ``key`` shows, built from the publication ``con`` reads as
    ``produce`` builds it, without checking or writing anything (to look at its columns)."""
    return build(con, key).report_for(version, "")
