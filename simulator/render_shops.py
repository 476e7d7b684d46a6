"""What the two shop databases hold at the end of the horizon, including their injected bad rows.

Rows are rendered a business day at a time (orders and refunds by the day they were created or
drawn, keys by the day they came in), numbered on from the day before.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from simulator.catalog import CATEGORIES
from simulator.config import SimConfig
from simulator.identity import substation_users
from simulator.orders import MAIN_PAYS, SUB_PAYS, substation_trade_no, unique_codes
from simulator.refunds import REASONS
from simulator.text import local_time
from simulator.truth import ANOMALY_SCHEMA

#: what MySQL stores for a date it could not take (and what a broken insert leaves)
ZERO_DATE = "0000-00-00 00:00:00"
EXPIRE_AFTER_S = 300  # dujiaoka's default order_expire_time: 5 minutes
BAD_KINDS = (
    "bad_row_missing_key",
    "bad_row_nonpositive_amount",
    "bad_row_unparsable_date",
    "bad_row_unknown_product",
    "bad_row_future_timestamp",
)


@dataclasses.dataclass(frozen=True)
class DayRows:
    """What the shop databases show of one business day's orders."""

    index: int
    #: the orders created that day, in their final state
    orders: pl.DataFrame
    #: the keys handed to them (``order_idx``, ``key_id``, ``supplier_code``, ``card_no``, ``secret``)
    sold: pl.DataFrame
    #: supplier_code → has_card_no: whether the supplier's keys come with a card number
    sup_card_no: pl.DataFrame


def key_text(has_card_no: pl.Expr) -> pl.Expr:
    """How the shops store an imported key: ``card_no----secret`` (the common import delimiter)."""
    return (
        pl.when(has_card_no)
        .then(pl.concat_str([pl.col("card_no"), pl.col("secret")], separator="----"))
        .otherwise(pl.col("secret"))
    )


def delivered_keys(sold: pl.DataFrame, sup_card_no: pl.DataFrame, name: str) -> pl.DataFrame:
    """Per order, the text of the keys it received, one per line (the order's ``name``)."""
    return (
        sold.join(sup_card_no, on="supplier_code", how="left")
        .sort("order_idx", "key_id")
        .group_by("order_idx", maintain_order=True)
        .agg(key_text(pl.col("has_card_no")).str.join("\n").alias(name))
    )


def bad_rows(cfg: SimConfig, d: int, orders: pl.DataFrame, shop: str) -> pl.DataFrame:
    """Extra junk rows of day ``d``: copies of its real orders with one field broken."""
    rng = cfg.rng(f"bad_rows_{shop}/{d}")
    mine = orders.filter(pl.col("shop") == shop)
    parts = []
    for kind in BAD_KINDS:
        k = int(rng.binomial(mine.height, getattr(cfg.profile, kind)))
        if k == 0:
            continue
        pick = np.sort(rng.choice(mine.height, size=k, replace=False))
        parts.append(mine[pick].with_columns(bad_kind=pl.lit(kind)))
    if not parts:
        return orders.clear().with_columns(
            bad_kind=pl.lit("", dtype=pl.Utf8),
            bad_future_at=pl.lit(None, dtype=pl.Int64),
            bad_goods=pl.lit(None, dtype=pl.Int64),
        )
    bad = pl.concat(parts)
    n = bad.height
    created = bad["created_at"].to_numpy()
    order_no = unique_codes(rng, n, 16) if shop == "main" else substation_trade_no(rng, created)
    return bad.with_columns(
        order_no=pl.Series(order_no),
        is_paid=pl.lit(False),
        paid_at=pl.lit(None, dtype=pl.Int64),
        delivered_at=pl.lit(None, dtype=pl.Int64),
        txn_no=pl.lit(""),
        # a clock gone wrong: years ahead, as a misconfigured server writes them
        bad_future_at=pl.Series(cfg.end_epoch + rng.integers(2 * 365, 10 * 365, n) * 86400),
        bad_goods=pl.Series(900_000 + rng.integers(0, 1000, n)),
    )


def main_orders(
    cfg: SimConfig, day: DayRows, goods: pl.DataFrame, first_id: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """dujiaoka ``orders`` rows of one day, ids from ``first_id``; and the bad rows' anomalies."""
    o = day.orders.filter(pl.col("shop") == "main")
    bad = bad_rows(cfg, day.index, day.orders, "main")
    end = cfg.end_epoch
    info = delivered_keys(day.sold, day.sup_card_no, "info")
    allrows = pl.concat(
        [
            o.with_columns(bad_kind=pl.lit("", dtype=pl.Utf8)),
            bad.drop("bad_future_at", "bad_goods"),
        ],
        how="diagonal_relaxed",
    ).join(info, on="order_idx", how="left")
    if bad.height:
        allrows = allrows.join(
            bad.select("order_no", "bad_future_at", "bad_goods"), on="order_no", how="left"
        )
    else:
        allrows = allrows.with_columns(
            bad_future_at=pl.lit(None, dtype=pl.Int64), bad_goods=pl.lit(None, dtype=pl.Int64)
        )
    allrows = allrows.join(
        goods.select(pl.col("goods_id").alias("listing_id"), "gd_name", "type"),
        on="listing_id",
        how="left",
    ).sort("created_at", "order_no")

    shows_paid = pl.col("is_paid") & ~pl.col("lost_callback").fill_null(False)
    delivered = pl.col("delivered_at").is_not_null()
    status = (
        pl.when(pl.col("bad_kind") != "")
        .then(pl.when(pl.col("created_at") + EXPIRE_AFTER_S < end).then(-1).otherwise(1))
        .when(~shows_paid)
        .then(pl.when(pl.col("created_at") + EXPIRE_AFTER_S < end).then(-1).otherwise(1))
        .when(delivered)
        .then(4)
        .when(pl.col("delivery_failed"))
        .then(5)
        .when(pl.col("is_manual"))
        .then(3)
        .otherwise(2)
    )
    updated = (
        pl.when(~shows_paid | (pl.col("bad_kind") != ""))
        .then(
            pl.when(pl.col("created_at") + EXPIRE_AFTER_S < end)
            .then(pl.col("created_at") + EXPIRE_AFTER_S)
            .otherwise(pl.col("created_at"))
        )
        .when(delivered)
        .then(pl.col("delivered_at"))
        .when(pl.col("delivery_failed"))
        .then(pl.col("paid_at") + 60)
        .otherwise(pl.col("paid_at"))
    )
    kind = pl.col("bad_kind")
    created_text = (
        pl.when(kind == "bad_row_unparsable_date")
        .then(pl.lit(ZERO_DATE))
        .when(kind == "bad_row_future_timestamp")
        .then(local_time(pl.col("bad_future_at")))
        .otherwise(local_time(pl.col("created_at")))
    )
    gross = pl.col("unit_price_fen") * pl.col("qty")
    actual = (
        pl.when(kind == "bad_row_nonpositive_amount")
        .then(pl.when(pl.col("order_idx") % 2 == 0).then(0).otherwise(-pl.col("amount_fen")))
        .otherwise(pl.col("amount_fen"))
    )
    title = (
        pl.when(pl.col("is_test").fill_null(False))
        .then(pl.concat_str([pl.lit("测试订单-"), pl.col("gd_name")]))
        .otherwise(pl.col("gd_name"))
    )
    orders = allrows.with_row_index("id", offset=first_id).select(
        pl.col("id").cast(pl.Int64),
        order_sn=pl.col("order_no"),
        goods_id=pl.when(kind == "bad_row_unknown_product")
        .then("bad_goods")
        .otherwise("listing_id"),
        coupon_id="coupon_id",
        title=pl.concat_str([title, pl.lit(" x "), pl.col("qty").cast(pl.Utf8)]),
        type=pl.col("type").cast(pl.Int64),
        goods_price=pl.col("unit_price_fen") / 100,
        buy_amount="qty",
        coupon_discount_price=pl.col("coupon_fen") / 100,
        wholesale_discount_price=pl.lit(0.0),
        total_price=gross / 100,
        actual_price=actual / 100,
        search_pwd=pl.lit(""),
        email=pl.when(kind == "bad_row_missing_key").then(pl.lit("")).otherwise("buyer_email"),
        info=pl.when(delivered & ~pl.col("is_manual"))
        .then("info")
        .when(delivered)
        .then(pl.lit("充值成功"))
        .otherwise(None),
        pay_id="pay_id",
        buy_ip="ip",
        trade_no=pl.when(shows_paid & (kind == "")).then("txn_no").otherwise(pl.lit("")),
        status=status,
        coupon_ret_back=pl.lit(0),
        created_at=created_text,
        updated_at=pl.when(kind == "bad_row_unparsable_date")
        .then(pl.lit(ZERO_DATE))
        .when(kind == "bad_row_future_timestamp")
        .then(local_time(pl.col("bad_future_at")))
        .otherwise(local_time(updated)),
        deleted_at=pl.lit(None, dtype=pl.Utf8),
    )
    return orders, _bad_anomalies(bad, "main", "orders", cfg)


def main_carmis(
    keys: pl.DataFrame, sup_card_no: pl.DataFrame, goods: pl.DataFrame, first_id: int
) -> pl.DataFrame:
    """dujiaoka ``carmis`` rows of the keys one day brought in, ids from ``first_id``."""
    carmis = (
        keys.filter((pl.col("shop") == "main") & ~pl.col("is_malformed"))
        .join(sup_card_no, on="supplier_code", how="left")
        .join(goods.select("sku_id", "goods_id"), on="sku_id", how="left")
        .sort("received_at", "key_id")
        .with_row_index("id", offset=first_id)
        .select(
            pl.col("id").cast(pl.Int64),
            "goods_id",
            status=pl.when(pl.col("sold_at").is_not_null()).then(2).otherwise(1),
            is_loop=pl.lit(0),
            carmi=key_text(pl.col("has_card_no")),
            created_at=local_time(pl.col("received_at")),
            updated_at=local_time(
                pl.coalesce(pl.col("sold_at"), pl.col("voided_at"), pl.col("received_at"))
            ),
            deleted_at=local_time(pl.col("voided_at")),
        )
    )
    return carmis


def main_catalogue(cfg: SimConfig, catalog: dict, stock: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """dujiaoka ``goods`` (with ``stock``: per SKU, keys sold and keys left) and the small tables."""
    goods = catalog["goods"]
    goods_rows = goods.join(stock, on="sku_id", how="left").join(
        catalog["skus"].select("sku_id", "launch_day"), on="sku_id", how="left"
    )
    launch_at = cfg.start_epoch + (pl.col("launch_day") - 30) * 86400
    goods_frame = goods_rows.select(
        id="goods_id",
        group_id="group_id",
        gd_name="gd_name",
        # NOT NULL without a default in dujiaoka (the SEO fields): shops repeat the name there
        gd_description="gd_name",
        gd_keywords="gd_name",
        retail_price=pl.col("retail_price_fen") / 100,
        actual_price=pl.col("actual_price_fen") / 100,
        in_stock=pl.col("in_stock").fill_null(0).cast(pl.Int64),
        sales_volume=pl.col("sales_volume").fill_null(0).cast(pl.Int64),
        ord=pl.lit(1),
        buy_limit_num=pl.lit(0),
        type="type",
        is_open=pl.lit(1),
        created_at=local_time(launch_at),
        updated_at=local_time(launch_at),
        deleted_at=pl.lit(None, dtype=pl.Utf8),
    ).sort("id")
    stamp = local_time(pl.lit(cfg.start_epoch - 400 * 86400))
    groups = pl.DataFrame(
        {"id": list(range(1, len(CATEGORIES) + 1)), "gp_name": [c[2] for c in CATEGORIES]}
    ).with_columns(
        is_open=pl.lit(1),
        ord=pl.lit(1),
        created_at=stamp,
        updated_at=stamp,
        deleted_at=pl.lit(None, dtype=pl.Utf8),
    )
    pays = pl.DataFrame(
        {
            "id": [p[0] for p in MAIN_PAYS],
            "pay_name": ["支付宝当面付", "微信扫码", "易支付-支付宝", "易支付-微信"],
            "pay_check": [p[1] for p in MAIN_PAYS],
            "pay_method": [2, 2, 1, 1],
            "pay_client": [3, 3, 3, 3],
            "merchant_id": ["2088631234560187", "1612345678", "1001", "1001"],
            "pay_handleroute": ["/pay/alipay", "/pay/wepay", "/pay/yipay", "/pay/yipay"],
        }
    ).with_columns(
        # NOT NULL without a default: the channel's private key (a placeholder, never read)
        merchant_pem=pl.lit("-----BEGIN PRIVATE KEY-----"),
        is_open=pl.lit(1),
        created_at=stamp,
        updated_at=stamp,
        deleted_at=pl.lit(None, dtype=pl.Utf8),
    )
    coupons = pl.DataFrame(
        {"id": [1, 2, 3], "discount": [1.0, 2.0, 5.0], "coupon": ["NEW1", "VIP2", "PROMO5"]}
    ).with_columns(
        is_use=pl.lit(1),
        is_open=pl.lit(1),
        ret=pl.lit(100000),
        created_at=stamp,
        updated_at=stamp,
        deleted_at=pl.lit(None, dtype=pl.Utf8),
    )
    return {"goods_group": groups, "goods": goods_frame, "coupons": coupons, "pays": pays}


def main_refunds(refunds: pl.DataFrame, first_id: int) -> pl.DataFrame:
    """The platform's ``refunds`` rows of the refunds one day drew, ids from ``first_id``."""
    return (
        refunds.filter(pl.col("shop") == "main")
        .with_row_index("id", offset=first_id)
        .select(
            pl.col("id").cast(pl.Int64),
            refund_no="refund_no",
            order_sn="order_no",
            amount=pl.col("amount_fen") / 100,
            reason=pl.col("reason").replace_strict(REASONS),
            status="status",
            created_at=local_time(pl.col("requested_at")),
            succeeded_at=local_time(pl.col("succeeded_at")),
        )
    )


def substation_orders(
    cfg: SimConfig, day: DayRows, first_id: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """acg-faka ``order`` rows of one day, ids from ``first_id``.

    Returns (rows, order_idx → row id for the keys table, anomalies of the bad rows).
    """
    o = day.orders.filter(pl.col("shop") == "substation")
    bad = bad_rows(cfg, day.index, day.orders, "substation")
    allrows = (
        pl.concat([o.with_columns(bad_kind=pl.lit("", dtype=pl.Utf8)), bad], how="diagonal_relaxed")
        .sort("created_at", "order_no")
        .with_row_index("id", offset=first_id)
    )
    allrows = allrows.with_columns(pl.col("id").cast(pl.Int64))
    sub_ids = allrows.filter(pl.col("bad_kind") == "").select("order_idx", sub_order_id="id")
    secrets = delivered_keys(day.sold, day.sup_card_no, "secret")
    allrows = allrows.join(secrets, on="order_idx", how="left")
    kind = pl.col("bad_kind")
    shows_paid = pl.col("is_paid") & ~pl.col("lost_callback").fill_null(False) & (kind == "")
    delivered = pl.col("delivered_at").is_not_null() & (kind == "")
    orders = allrows.select(
        "id",
        owner=pl.when(kind == "bad_row_missing_key").then(0).otherwise("owner"),
        user_id=pl.lit(0),
        trade_no="order_no",
        amount=pl.when(kind == "bad_row_nonpositive_amount")
        .then(0.0)
        .otherwise(pl.col("amount_fen") / 100),
        commodity_id=pl.when(kind == "bad_row_unknown_product")
        .then("bad_goods")
        .otherwise("listing_id"),
        card_num="qty",
        pay_id="pay_id",
        # acg-faka keeps DATETIME: a zero date is what a broken insert leaves there
        create_time=pl.when(kind == "bad_row_unparsable_date")
        .then(pl.lit(ZERO_DATE))
        .when(kind == "bad_row_future_timestamp")
        .then(local_time(pl.col("bad_future_at")))
        .otherwise(local_time(pl.col("created_at"))),
        create_ip="ip",
        create_device=(pl.col("order_idx") % 3),
        pay_time=pl.when(shows_paid).then(local_time(pl.col("paid_at"))).otherwise(None),
        status=pl.when(shows_paid).then(1).otherwise(0),
        secret=pl.when(delivered & ~pl.col("is_manual"))
        .then("secret")
        .when(shows_paid & pl.col("is_manual") & ~delivered)
        .then(pl.lit("正在发货中，请耐心等待，如有疑问，请联系客服。"))
        .when(delivered)
        .then(pl.lit("充值成功"))
        .otherwise(None),
        contact=pl.when(kind == "bad_row_missing_key")
        .then(pl.lit(""))
        .when(pl.col("is_test").fill_null(False))
        .then(pl.lit("test"))
        .otherwise("contact"),
        delivery_status=pl.when(delivered).then(1).otherwise(0),
        coupon_id=pl.lit(None, dtype=pl.Int64),
    )
    return orders, sub_ids, _bad_anomalies(bad, "substation", "order", cfg)


def substation_cards(
    keys: pl.DataFrame,
    sup_card_no: pl.DataFrame,
    comms: pl.DataFrame,
    sub_ids: pl.DataFrame,
    first_id: int,
) -> pl.DataFrame:
    """acg-faka ``card`` rows of the keys one day brought in, ids from ``first_id``.

    ``sub_ids`` maps the orders the keys were sold to onto their ``order`` row ids.
    """
    return (
        keys.filter((pl.col("shop") == "substation") & ~pl.col("is_malformed"))
        .join(sup_card_no, on="supplier_code", how="left")
        .join(comms.select("sku_id", "commodity_id"), on="sku_id", how="left")
        .join(sub_ids, on="order_idx", how="left")
        .sort("received_at", "key_id")
        .with_row_index("id", offset=first_id)
        .select(
            pl.col("id").cast(pl.Int64),
            owner=pl.lit(0),
            commodity_id="commodity_id",
            secret=key_text(pl.col("has_card_no")),
            create_time=local_time(pl.col("received_at")),
            purchase_time=local_time(pl.col("sold_at")),
            order_id="sub_order_id",
            status=pl.when(pl.col("sold_at").is_not_null())
            .then(1)
            .when(pl.col("voided_at").is_not_null())
            .then(2)
            .otherwise(0),
            note=pl.when(pl.col("voided_at").is_not_null())
            .then(pl.lit("卡密无效，已锁定"))
            .otherwise(None),
        )
    )


def substation_catalogue(
    cfg: SimConfig, catalog: dict, people: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """acg-faka ``user``, ``category``, ``commodity`` and ``pay``."""
    comms = catalog["commodities"]
    stamp = local_time(pl.lit(cfg.start_epoch - 400 * 86400))
    uid = pl.col("user_id").cast(pl.Utf8)
    users = substation_users(people).select(
        id="user_id",
        username="username",
        email="email",
        phone="phone",
        qq="qq",
        # NOT NULL without a default in acg-faka: never read by the platform, filled as the
        # shop fills them (a salted hash, its salt, the account's API key)
        password=pl.concat_str([pl.lit("sim-password-hash-"), uid]),
        salt=pl.concat_str([pl.lit("salt"), uid]),
        app_key=pl.concat_str([pl.lit("appkey"), uid]),
        balance=pl.lit(0.0),
        create_time=local_time(
            cfg.start_epoch + (pl.col("join_day") - 60) * 86400 + pl.col("user_id") % 86400
        ),
        status=pl.lit(1),
    )
    category = pl.DataFrame(
        {"id": list(range(1, len(CATEGORIES) + 1)), "name": [c[3] for c in CATEGORIES]}
    ).with_columns(sort=pl.lit(0), create_time=stamp, status=pl.lit(1))
    commodity = comms.select(
        id="commodity_id",
        category_id="category_id",
        name="name",
        factory_price=pl.col("factory_price_fen") / 100,
        price=pl.col("price_fen") / 100,
        user_price=pl.col("price_fen") / 100,
        status=pl.lit(1),
        create_time=stamp,
        code="code",
        delivery_way="delivery_way",
    )
    pay = pl.DataFrame(
        {
            "id": [p[0] for p in SUB_PAYS],
            "name": ["支付宝", "微信支付"],
            "code": [p[1] for p in SUB_PAYS],
            "handle": ["Alipay", "Wxpay"],
        }
    ).with_columns(commodity=pl.lit(1), create_time=stamp, cost=pl.lit(0.0), cost_type=pl.lit(1))
    return {"user": users, "category": category, "commodity": commodity, "pay": pay}


def _bad_anomalies(bad: pl.DataFrame, shop: str, table: str, cfg: SimConfig) -> pl.DataFrame:
    if bad.is_empty():
        return pl.DataFrame(schema=ANOMALY_SCHEMA)
    return bad.select(
        kind="bad_kind",
        source=pl.lit(f"{shop}.{table}"),
        record=pl.col("order_no"),
        day=pl.lit(cfg.start) + pl.duration(days=pl.col("day")),
        detail=pl.lit("extra junk row, not a real order"),
    )
