"""Property tests: the statement parsers read back exactly what a statement says and refuse a
statement that does not sum to itself; the contract validator loses no row and types every kept
row correctly."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.lib.contracts import Column, Contract, load_contracts, validate
from pipelines.lib.parsers import FileRejected, StatementRejected, parse_alipay, parse_wechat
from simulator.config import CHANNEL_ACCOUNTS
from simulator.spreadsheet import resaved
from simulator.statements import render_alipay, render_wechat

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 10, 5)
EPOCH = 1791129600  # 2026-10-05 00:00 CST

line = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["payment", "payment", "refund"]),
        "amount": st.integers(min_value=1, max_value=5_000_000),
        "offset": st.integers(min_value=0, max_value=86_399),
        "txn": st.integers(min_value=0, max_value=10**16 - 1),
        "order": st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=16, max_size=16),
    }
)


def _lines(items: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "kind": [i["kind"] for i in items],
            "amount_fen": [i["amount"] if i["kind"] == "payment" else -i["amount"] for i in items],
            "txn_no": [f"{DAY:%Y%m%d}2200{i['txn']:016d}" for i in items],
            "merchant_no": [i["order"] for i in items],
            "title": ["腾讯QQ币100元 x 1"] * len(items),
            "created_at": [EPOCH + i["offset"] for i in items],
            "done_at": [EPOCH + i["offset"] for i in items],
            "refund_no": [
                f"RF{n:08d}" if i["kind"] == "refund" else "" for n, i in enumerate(items)
            ],
            "channel_refund_no": [f"50300{n:013d}" for n in range(len(items))],
            "buyer_account": ["138****8000"] * len(items),
            "openid": ["oAbCdEfGhIjKlMnOpQrStUvWxYz0"] * len(items),
            "bank": ["CFT"] * len(items),
        },
        schema_overrides={"amount_fen": pl.Int64, "created_at": pl.Int64, "done_at": pl.Int64},
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(line, min_size=0, max_size=40),
    tamper=st.integers(min_value=0, max_value=10**6),
    current=st.booleans(),
)
def test_alipay_round_trip_and_tampering(
    tmp_path: Path, items: list[dict], tamper: int, current: bool
) -> None:
    """Both export layouts: the older one (only the IDs tab-suffixed, 商家实收共 footers) and
    today's (every text cell tab-suffixed, the refund footer worded 商家实收退款共…)."""
    contract = load_contracts()["alipay__statement_lines"]
    acc = next(a for a in CHANNEL_ACCOUNTS if a.layout == "alipay")
    path = tmp_path / f"{acc.account_no}_{DAY:%Y%m%d}_业务明细.csv"
    path.write_bytes(render_alipay(_lines(items), acc, DAY, broken=False, current=current))
    if current:
        assert "商家实收退款共".encode("gbk") in path.read_bytes()
    parsed = parse_alipay(path, contract)
    assert parsed.rows.height == len(items)
    # no cell keeps the tab an export appends
    for column in parsed.rows.columns:
        assert not parsed.rows[column].str.contains("\t").any(), column
    assert set(parsed.rows["business_type"]) <= {"交易", "退款"}
    assert parsed.meta["footer"]["refund_lines"] == sum(i["kind"] == "refund" for i in items)
    got = sorted(int(Decimal(v) * 100) for v in parsed.rows["merchant_received"])
    want = sorted(i["amount"] if i["kind"] == "payment" else -i["amount"] for i in items)
    assert got == want
    assert all(re.fullmatch(r"\d{28}", t) for t in parsed.rows["txn_no"])
    if items:  # change one amount in the body: the footer no longer agrees
        text = path.read_bytes().decode("gbk").split("\r\n")
        body_at = next(i for i, ln in enumerate(text) if ln.startswith("支付宝交易号")) + 1
        cells = text[body_at].split(",")
        cells[12] = f"{Decimal(cells[12]) + Decimal(tamper + 1) / 100:.2f}"
        text[body_at] = ",".join(cells)
        path.write_bytes("\r\n".join(text).encode("gbk"))
        with pytest.raises(StatementRejected, match="rejected whole"):
            parse_alipay(path, contract)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(line, min_size=1, max_size=30), wechat=st.booleans(), legacy=st.booleans())
def test_a_statement_saved_again_by_a_spreadsheet_reads_the_same(
    tmp_path: Path, items: list[dict], wechat: bool, legacy: bool
) -> None:
    """Re-encoded, padded with commas, IDs as ="…" formulas, times in its date format, blank rows
    after the data: the same lines; with the IDs in scientific notation (digits lost) or the
    times cut to the minute: refused whole, naming the line."""
    if wechat:
        contract, parse = load_contracts()["wechat__bill_lines"], parse_wechat
        acc = next(
            a for a in CHANNEL_ACCOUNTS if a.layout == ("wechat_legacy" if legacy else "wechat_all")
        )
        frame = _lines(items).with_columns(
            txn_no=pl.lit("4200") + pl.col("txn_no").str.slice(12, 16) + pl.lit(f"{DAY:%Y%m%d}")
        )
        data, encoding = render_wechat(frame, acc, broken=False), "utf-8-sig"
        name = f"{acc.account_no}_{DAY:%Y%m%d}_All.csv"
    else:
        contract, parse = load_contracts()["alipay__statement_lines"], parse_alipay
        acc = next(a for a in CHANNEL_ACCOUNTS if a.layout == "alipay")
        data = render_alipay(_lines(items), acc, DAY, broken=False, current=legacy)
        encoding, name = "gbk", f"{acc.account_no}_{DAY:%Y%m%d}_业务明细.csv"
    exported, again = tmp_path / name, tmp_path / f"again_{name}"
    exported.write_bytes(data)
    again.write_bytes(resaved(data, encoding))
    assert again.read_bytes() != data
    first, second = parse(exported, contract), parse(again, contract)
    assert second.rows.equals(first.rows)
    assert second.meta == first.meta and second.account == first.account
    again.write_bytes(resaved(data, encoding, scientific=True))
    with pytest.raises(FileRejected, match=r"line \d+: .* scientific notation"):
        parse(again, contract)
    # in the spreadsheet's default date format every time loses its seconds: refused, naming the
    # line (WeChat's times, and today's Alipay layout's, are text a spreadsheet leaves as it is:
    # backtick-prefixed, tab-suffixed)
    again.write_bytes(resaved(data, encoding, seconds=False))
    if wechat or legacy:
        assert parse(again, contract).rows.equals(first.rows)
    else:
        with pytest.raises(FileRejected, match=r"line \d+: 创建时间 reads '\d{4}/.*without the"):
            parse(again, contract)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(line, min_size=1, max_size=40), legacy=st.booleans())
def test_wechat_round_trip_both_layouts(tmp_path: Path, items: list[dict], legacy: bool) -> None:
    contract = load_contracts()["wechat__bill_lines"]
    acc = next(
        a for a in CHANNEL_ACCOUNTS if a.layout == ("wechat_legacy" if legacy else "wechat_all")
    )
    path = tmp_path / f"{acc.account_no}_{DAY:%Y%m%d}_All.csv"
    frame = _lines(items).with_columns(
        txn_no=pl.lit("4200") + pl.col("txn_no").str.slice(12, 16) + pl.lit(f"{DAY:%Y%m%d}")
    )
    path.write_bytes(render_wechat(frame, acc, broken=False))
    parsed = parse_wechat(path, contract)
    assert parsed.meta["layout"] == ("legacy_24" if legacy else "all_27")
    assert parsed.rows.height == len(items)
    settled = sum(int(Decimal(v) * 100) for v in parsed.rows["settlement_amount"])
    assert settled == sum(i["amount"] for i in items if i["kind"] == "payment")
    path.write_bytes(render_wechat(frame, acc, broken=True))
    with pytest.raises(StatementRejected):
        parse_wechat(path, contract)


CONTRACT = Contract(
    dataset="t",
    version=1,
    description="",
    owner="",
    group="",
    source={"kind": "database"},
    key=("id",),
    path=Path("t.v1.yml"),
    columns=(
        Column("id", "int", nullable=False),
        Column("status", "int", nullable=False, allowed=(1, 2, -1)),
        Column("price", "yuan", nullable=False, min_exclusive=0),
        Column("code", "string", pattern=r"^[A-Z]{3}$"),
        Column("at", "local_datetime", nullable=False, not_future=True),
    ),
)
cell = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.integers(-5, 5).map(str),
    st.decimals(-100, 100000, places=2).map(str),
    st.sampled_from(["ABC", "abc", "XYZ"]),
    st.sampled_from(
        [
            "2026-10-05 12:00:00",
            "0000-00-00 00:00:00",
            "2099-01-01 00:00:00",
            "2026-02-30 10:00:00",
            "1999-12-31 23:59:59",
        ]
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell, cell, cell), max_size=30))
def test_validator_loses_nothing_and_keeps_only_rows_that_obey(rows: list[tuple]) -> None:
    frame = pl.DataFrame(rows, schema=["id", "status", "price", "code", "at"], orient="row")
    now = dt.datetime(2026, 10, 6, tzinfo=dt.UTC)
    out = validate(frame, CONTRACT, now)
    assert out.good.height + out.quarantined.height == frame.height
    for r in out.good.iter_rows(named=True):
        assert r["id"] is not None and r["status"] in (1, 2, -1) and r["price_fen"] > 0
        assert r["code"] is None or re.fullmatch(r"[A-Z]{3}", r["code"])
        assert dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= r["at"] <= now + dt.timedelta(days=1)
    assert out.quarantined["_rule"].is_not_null().all()
    assert out.quarantined["_reason"].str.len_chars().min() or out.quarantined.is_empty()
    # the original text survives in quarantine, exactly
    originals = {tuple(r) for r in frame.rows()}
    import json

    for record in out.quarantined["_record"]:
        values = json.loads(record)
        assert tuple(values[c] for c in ("id", "status", "price", "code", "at")) in originals


def test_local_datetimes_parse_with_or_without_a_fraction() -> None:
    """MySQL DATETIME(6) columns read back as `…:14.000000`; SQLite keeps `…:14`: both land."""
    frame = pl.DataFrame(
        {
            "id": ["1", "2", "3"],
            "status": ["1", "1", "1"],
            "price": ["1.00", "1.00", "1.00"],
            "code": ["ABC", "ABC", "ABC"],
            "at": ["2026-10-05 12:00:14", "2026-10-05 12:00:14.000000", "2026-10-05 12:00:14.5"],
        }
    )
    out = validate(frame, CONTRACT, dt.datetime(2026, 10, 6, tzinfo=dt.UTC))
    assert out.quarantined.is_empty()
    at = out.good["at"].to_list()
    assert at[0] == at[1] == dt.datetime(2026, 10, 5, 4, 0, 14, tzinfo=dt.UTC)
    assert at[2] == at[0] + dt.timedelta(milliseconds=500)


#: an Alipay 账务明细 (account ledger) as the merchant back office exports it (GBK): a payment,
#: its service fee on a row of its own, a refund; text cells end in a tab
ALIPAY_LEDGER = """#支付宝账务明细查询
#账号：[20886312345601870156]
#起始日期：[2026年10月05日 00:00:00]   终止日期：[2026年10月06日 00:00:00]
#-----------------------------------------账务明细列表----------------------------------------
账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,交易渠道,业务类型,备注
310251006543210\t,2026100522001412341234567890\t,A1B2C3D4E5F6G7H8\t,Steam 100\t,2026-10-05 10:00:05,138****8000\t,100.00,0.00,5100.00,支付宝,在线支付,
310251006543211\t,2026100522001412341234567890\t,A1B2C3D4E5F6G7H8\t,Steam 100\t,2026-10-05 10:00:05,138****8000\t,0.00,-0.60,5099.40,支付宝,收费,服务费[2026100522001412341234567890]
310251006543377\t,2026100522001412341234567890\t,A1B2C3D4E5F6G7H8\t,Steam 100\t,2026-10-05 15:30:00,138****8000\t,0.00,-50.00,5049.40,支付宝,交易退款,退款
#----------------------------------------账务明细列表结束-------------------------------------
#支出合计：2笔，共-50.60元
#收入合计：1笔，共100.00元
#导出时间：[2026年10月06日 08:15:32]
"""

#: a WeChat Pay 资金账单 (fund-flow bill, downloadfundflowbill): every value backtick-prefixed
WECHAT_FUND_FLOW = """记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),资金变更提交申请人,备注,业务凭证号
`2026-10-05 10:00:05,`4200002101202610051234567890,`4200002101202610051234567890,`交易,`交易,`收入,`100.00,`1100.00,`system,`结算总金额 100.00 元;含手续费 0.60 元,`A1B2C3D4E5F6G7H8
`2026-10-05 10:00:05,`4200002101202610051234567890,`1900000109202610051000000001,`交易,`扣除交易手续费,`支出,`0.60,`1099.40,`system,`,`A1B2C3D4E5F6G7H8
资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额
`2,`1,`100.00,`1,`0.60
"""


@pytest.mark.parametrize(
    ("channel", "text", "encoding", "expected"),
    [
        ("alipay", ALIPAY_LEDGER, "gbk", r"line 1: an Alipay 账务明细 .* expected the 业务明细"),
        ("wechat", WECHAT_FUND_FLOW, "utf-8-sig", r"line 1: a WeChat Pay 资金账单 .* 交易时间"),
    ],
)
def test_a_money_flow_export_sent_instead_of_the_statement_is_named_and_refused(
    tmp_path: Path, channel: str, text: str, encoding: str, expected: str
) -> None:
    """The channels' ledgers list money, not orders: told apart from the trade statements and
    refused whole with what the file is and what to send instead, as exported or re-saved."""
    contract = load_contracts()[
        "alipay__statement_lines" if channel == "alipay" else "wechat__bill_lines"
    ]
    parse = parse_alipay if channel == "alipay" else parse_wechat
    path = tmp_path / f"20886312345601870156_20261005_{channel}.csv"
    exported = text.replace("\n", "\r\n").encode(encoding)
    for data in (exported, resaved(exported, encoding)):
        path.write_bytes(data)
        with pytest.raises(FileRejected, match=expected):
            parse(path, contract)
