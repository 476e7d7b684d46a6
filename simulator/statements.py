"""Daily channel statements: Alipay 业务明细 (GBK CSV, the older export layout and today's) and
WeChat Pay trade bills (ALL, two layouts).

Lines come from the true payments and refunds, decorated the way each integration does it
(order-number affixes), minus the injected missing lines, plus duplicate charges; a payment in the
last minute of a day may sit in the next day's file. Footers and summaries are computed from the
rows actually written, so a file always sums to its own totals, except a deliberately broken one
(``statement_footer_mismatch``), which is followed by a corrected re-send.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from simulator.config import CHANNEL_ACCOUNTS, ChannelAccount, SimConfig
from simulator.spreadsheet import resaved
from simulator.text import local_time, yuan
from simulator.truth import ANOMALY_SCHEMA

ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
WECHAT_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
WECHAT_SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
WECHAT_LEGACY_HEADER = (
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率"
)
WECHAT_LEGACY_SUMMARY_HEADER = "总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额"
DASHES = "-" * 41


def fee_fen(amount: pl.Expr, rate_bp: int) -> pl.Expr:
    """Channel fee on one transaction, half-up to the fen (amount ≥ 0)."""
    return (amount * rate_bp + 5000) // 10000


def statement_lines(
    cfg: SimConfig, d: int, orders: pl.DataFrame, refunds: pl.DataFrame
) -> pl.DataFrame:
    """Every line of every account's statement of day ``d``, with its account and kind.

    ``orders`` must hold every order paid on day ``d`` or in the last minute before it (those
    created on the two days before it and on it), with ``title``; ``refunds`` the refunds that
    succeeded on day ``d``, with their order's ``title``.
    """
    affixed = (
        pl.when(pl.col("order_no_affix") == "")
        .then(pl.col("order_no"))
        .when(pl.col("order_no_affix").str.contains(r"^[_\-]"))
        .then(pl.col("order_no") + pl.col("order_no_affix"))
        .otherwise(pl.col("order_no_affix") + pl.col("order_no"))
    )
    day = lambda at: (pl.col(at) - cfg.start_epoch) // 86400  # noqa: E731 - start is local midnight
    base = orders.filter(pl.col("is_paid")).with_columns(merchant_no=affixed)
    pays = base.filter(
        ~pl.col("missing_in_statement") & (day("paid_at") + pl.col("statement_day_shift") == d)
    ).select(
        "account",
        "order_idx",
        "merchant_no",
        "title",
        "txn_no",
        "person_id",
        kind=pl.lit("payment"),
        created_at="created_at",
        done_at="paid_at",
        amount_fen=pl.col("amount_fen") + pl.col("amount_delta_fen"),
        refund_no=pl.lit(""),
        channel_refund_no=pl.lit(""),
    )
    dups = base.filter(pl.col("duplicate_payment") & (day("dup_paid_at") == d)).select(
        "account",
        "order_idx",
        "merchant_no",
        "title",
        txn_no="dup_txn_no",
        person_id="person_id",
        kind=pl.lit("payment"),
        created_at="created_at",
        done_at="dup_paid_at",
        amount_fen=pl.col("amount_fen") + pl.col("amount_delta_fen"),
        refund_no=pl.lit(""),
        channel_refund_no=pl.lit(""),
    )
    rng = cfg.rng(f"statement_refund_ids/{d}")
    done = refunds.sort("refund_idx")
    refund_lines = done.select(
        "account",
        "order_idx",
        affixed.alias("merchant_no"),
        "title",
        "txn_no",
        "person_id",
        kind=pl.lit("refund"),
        created_at="requested_at",
        done_at="succeeded_at",
        amount_fen=-pl.col("amount_fen"),
        # the substation keeps no refund records: the channel's own request number stands in
        refund_no=pl.when(pl.col("shop") == "main")
        .then("refund_no")
        .otherwise(pl.concat_str([pl.lit("SUBRF"), pl.col("refund_no").str.slice(2)])),
        channel_refund_no=pl.Series(
            np.char.add("50300", rng.integers(10**12, 10**13, done.height).astype(str))
        ).cast(pl.Utf8),
    )
    lines = pl.concat([pays, dups, refund_lines], how="vertical_relaxed")
    return lines.sort("account", "done_at", "txn_no", "kind")


def _yuan5(fen: pl.Expr) -> pl.Expr:
    return yuan(fen) + pl.lit("000")


def _alipay_body(
    lines: pl.DataFrame, acc: ChannelAccount, current: bool = False
) -> tuple[list[str], dict]:
    """The detail lines and the footer totals. ``current``: as Alipay's site exports today, every
    text cell ending in a tab (older exports tab only the IDs)."""
    is_refund = pl.col("kind") == "refund"
    fee = fee_fen(pl.col("amount_fen").abs(), acc.fee_rate_bp)
    masked = pl.col("buyer_account")

    def text(cell: pl.Expr) -> pl.Expr:
        return cell + "\t" if current else cell

    rows = lines.select(
        pl.concat_str(
            [
                pl.col("txn_no") + "\t",
                pl.col("merchant_no") + "\t",
                text(pl.when(is_refund).then(pl.lit("退款")).otherwise(pl.lit("交易"))),
                text(pl.col("title")),
                text(local_time(pl.col("created_at"))),
                text(local_time(pl.col("done_at"))),
                pl.lit(""),
                pl.lit(""),
                pl.lit(""),
                pl.lit(""),
                text(masked),
                yuan(pl.col("amount_fen")),
                yuan(pl.col("amount_fen")),
                pl.lit("0.00"),
                pl.lit("0.00"),
                pl.lit("0.00"),
                pl.lit("0.00"),
                pl.lit("0.00"),
                pl.lit(""),
                pl.lit("0.00"),
                pl.lit("0.00"),
                pl.when(is_refund).then(pl.col("refund_no") + "\t").otherwise(pl.lit("")),
                yuan(pl.when(is_refund).then(fee).otherwise(-fee)),
                pl.lit("0.00"),
                pl.lit(""),
            ],
            separator=",",
        ).alias("line")
    )["line"].to_list()
    totals = lines.select(
        n_pay=(~is_refund).sum(),
        pay_fen=pl.when(~is_refund).then("amount_fen").otherwise(0).sum(),
        n_refund=is_refund.sum(),
        refund_fen=pl.when(is_refund).then("amount_fen").otherwise(0).sum(),
    ).row(0, named=True)
    return rows, totals


def render_alipay(
    lines: pl.DataFrame, acc: ChannelAccount, day: dt.date, broken: bool, current: bool = False
) -> bytes:
    """A day's 业务明细 as GBK text with CRLF line ends. ``current``: the layout Alipay's site
    exports today (every text cell tab-suffixed, the refund footer worded 商家实收退款共…)."""
    rows, t = _alipay_body(lines, acc, current)
    if broken and rows:  # the footer counts a line the export lost
        t = {**t, "n_pay": t["n_pay"] + 1, "pay_fen": t["pay_fen"] + 1000}
    nxt = day + dt.timedelta(days=1)
    head = [
        "#支付宝业务明细查询",
        f"#账号：[{acc.account_no}0156]",
        f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{nxt:%Y年%m月%d日} 00:00:00]",
        f"#{DASHES}业务明细列表{DASHES}",
        ALIPAY_HEADER,
    ]
    tail = [
        f"#{DASHES}业务明细列表结束{DASHES}",
        f"#交易合计：{t['n_pay']}笔，商家实收共{_y(t['pay_fen'])}元，商家优惠共0.00元",
        (
            f"#退款合计：{t['n_refund']}笔，商家实收退款共{_y(t['refund_fen'])}元，商家优惠退款共0.00元"
            if current
            else f"#退款合计：{t['n_refund']}笔，商家实收共{_y(t['refund_fen'])}元，商家优惠共0.00元"
        ),
        f"#导出时间：[{nxt:%Y年%m月%d日} 09:{(hash_day(day) % 50) + 5:02d}:17]",
    ]
    return ("\r\n".join(head + rows + tail) + "\r\n").encode("gbk")


def hash_day(day: dt.date) -> int:
    return day.toordinal() * 2654435761 % 1000


def _y(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def render_wechat(lines: pl.DataFrame, acc: ChannelAccount, broken: bool) -> bytes:
    is_refund = pl.col("kind") == "refund"
    legacy = acc.layout == "wechat_legacy"
    fee = fee_fen(pl.col("amount_fen").abs(), acc.fee_rate_bp)
    signed_fee = pl.when(is_refund).then(-fee).otherwise(fee)
    settle = pl.when(is_refund).then(0).otherwise("amount_fen")
    refund = pl.when(is_refund).then(-pl.col("amount_fen")).otherwise(0)
    rate = f"{acc.fee_rate_bp / 100:.2f}%"
    cols = [
        local_time(pl.col("done_at")),
        pl.lit(acc.app_id),
        pl.lit(acc.account_no),
        pl.lit("0"),
        pl.lit(""),
        pl.col("txn_no"),
        pl.col("merchant_no"),
        pl.col("openid"),
        pl.lit("NATIVE"),
        pl.when(is_refund).then(pl.lit("REFUND")).otherwise(pl.lit("SUCCESS")),
        pl.col("bank"),
        pl.lit("CNY"),
        yuan(settle),
        pl.lit("0.00"),
        pl.when(is_refund).then("channel_refund_no").otherwise(pl.lit("0")),
        pl.when(is_refund).then("refund_no").otherwise(pl.lit("0")),
        yuan(refund),
        pl.lit("0.00"),
        pl.when(is_refund).then(pl.lit("ORIGINAL")).otherwise(pl.lit("")),
        pl.when(is_refund).then(pl.lit("SUCCESS")).otherwise(pl.lit("")),
        pl.col("title"),
        pl.lit(""),
        _yuan5(signed_fee),
        pl.lit(rate),
    ]
    if not legacy:
        cols += [yuan(settle), yuan(refund), pl.lit("")]
    rows = lines.select(pl.concat_str([pl.lit("`") + c for c in cols], separator=",").alias("l"))[
        "l"
    ].to_list()
    s = lines.select(
        n=pl.len(),
        settle=settle.sum(),
        refund=refund.sum(),
        fee=signed_fee.sum(),
    ).row(0, named=True)
    if broken and rows:
        s = {**s, "settle": s["settle"] + 1000}
    if legacy:
        summary_head = WECHAT_LEGACY_SUMMARY_HEADER
        summary = [str(s["n"]), _y(s["settle"]), _y(s["refund"]), "0.00", _y(s["fee"]) + "000"]
        header = WECHAT_LEGACY_HEADER
    else:
        summary_head = WECHAT_SUMMARY_HEADER
        summary = [
            str(s["n"]),
            _y(s["settle"]),
            _y(s["refund"]),
            "0.00",
            _y(s["fee"]) + "000",
            _y(s["settle"]),
            _y(s["refund"]),
        ]
        header = WECHAT_HEADER
    out = [header, *rows, summary_head, ",".join("`" + v for v in summary)]
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def statement_path(root: Path, acc: ChannelAccount, day: dt.date, suffix: str = "") -> Path:
    if acc.channel == "alipay":
        name = f"{acc.account_no}0156_{day:%Y%m%d}_业务明细{suffix}.csv"
    else:
        name = f"{acc.account_no}_{day:%Y%m%d}_All{suffix}.csv"
    return root / "statements" / acc.channel / acc.key / name


class StatementWriter:
    """Writes every account's statement of a day once the day's payments and refunds are known."""

    def __init__(self, cfg: SimConfig, people: pl.DataFrame, root: Path) -> None:
        self.cfg = cfg
        self.root = root
        self.people = people.select("person_id", "phone", "email", "wechat_openid")
        self.anomalies: list[tuple] = []

    def write_day(self, d: int, orders: pl.DataFrame, refunds: pl.DataFrame) -> None:
        """Day ``d``'s files (see ``statement_lines`` for what ``orders`` and ``refunds`` hold)."""
        cfg = self.cfg
        rng = cfg.rng(f"statement_files/{d}")
        lines = statement_lines(cfg, d, orders, refunds).join(
            self.people, on="person_id", how="left", maintain_order="left"
        )
        bank = np.array(["CFT", "OTHERS", "ICBC_DEBIT", "CMB_CREDIT", "CCB_DEBIT", "ABC_DEBIT"])
        lines = lines.with_columns(
            buyer_account=pl.when(pl.col("person_id") % 5 < 3)
            .then(pl.col("phone").str.slice(0, 3) + "****" + pl.col("phone").str.slice(7, 4))
            .otherwise(
                pl.col("email").str.slice(0, 3)
                + "***@"
                + pl.col("email").str.split("@").list.last()
            ),
            # openids are per app: the substation's app sees another id for the same person
            openid=pl.when(pl.col("account") == "wechat_main")
            .then(pl.col("wechat_openid"))
            .otherwise(pl.lit("o") + pl.col("wechat_openid").str.slice(1).str.reverse()),
            bank=pl.Series(bank[(lines["person_id"].to_numpy() * 7) % len(bank)]),
        )
        day = cfg.day(d)
        # a stream of its own: the files a spreadsheet touched change no other draw
        handled = cfg.rng(f"statement_resaved/{d}")
        for acc in CHANNEL_ACCOUNTS:
            day_lines = lines.filter(pl.col("account") == acc.key)
            broken = bool(rng.uniform() < cfg.profile.statement_footer_mismatch)
            resend = bool(rng.uniform() < cfg.profile.resent_file)
            # the substation's Alipay account exports in today's layout (messy profiles)
            current = (
                acc.channel == "alipay"
                and acc.shop == "substation"
                and cfg.profile.alipay_current_export > 0
            )
            # one draw per file: the lowest shares damage its IDs, the next are re-saved intact,
            # the highest cut its times to the minute
            touched, mess = handled.uniform(), cfg.profile
            scientific = bool(touched < mess.statement_scientific_ids)
            resaved_ok = not scientific and bool(
                touched < mess.statement_scientific_ids + mess.statement_resaved
            )
            # a spreadsheet re-formats only the times it reads as dates: not WeChat's (backtick
            # text) nor today's Alipay layout's (tab-suffixed text)
            to_minute = (
                acc.channel == "alipay"
                and not current
                and bool(touched >= 1 - mess.statement_times_to_minute)
            )
            if acc.channel == "alipay":
                good = render_alipay(day_lines, acc, day, False, current)
                sent = render_alipay(day_lines, acc, day, True, current) if broken else good
            else:
                good = render_wechat(day_lines, acc, False)
                sent = render_wechat(day_lines, acc, True) if broken else good
            path = statement_path(self.root, acc, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            if scientific or to_minute or resaved_ok:
                encoding = "gbk" if acc.channel == "alipay" else "utf-8-sig"
                sent = resaved(sent, encoding, scientific=scientific, seconds=not to_minute)
                if scientific or to_minute:
                    kind = "statement_scientific_ids" if scientific else "statement_times_to_minute"
                    what = "IDs in scientific notation" if scientific else "times cut to the minute"
                    detail = (
                        f"saved again by a spreadsheet, {what}; re-sent as exported in "
                        f"{path.stem}_v2"
                    )
                else:
                    kind = "statement_resaved"
                    detail = (
                        "saved again by a spreadsheet (re-encoded, padded, IDs as formulas, times "
                        "in its date format)"
                    )
                self.anomalies.append((kind, path.name, day, detail))
            path.write_bytes(sent)
            if current:
                self.anomalies.append(
                    (
                        "alipay_current_export",
                        path.name,
                        day,
                        "today's export layout: every text cell ends in a tab, refund footer "
                        "worded 商家实收退款共…",
                    )
                )
            if broken or scientific or to_minute:
                statement_path(self.root, acc, day, "_v2").write_bytes(good)
            if broken:
                self.anomalies.append(
                    (
                        "statement_footer_mismatch",
                        path.name,
                        day,
                        f"rows do not sum to the footer; corrected in {path.stem}_v2",
                    )
                )
            if resend:
                statement_path(self.root, acc, day, "(1)").write_bytes(sent)
                self.anomalies.append(
                    ("resent_file", f"{path.stem}(1).csv", day, f"identical re-send of {path.name}")
                )

    def anomaly_rows(self) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {"kind": k, "source": "statements", "record": r, "day": d, "detail": t}
                for k, r, d, t in self.anomalies
            ],
            schema=ANOMALY_SCHEMA,
        )
