"""The answer key (``_truth/``): who is who, what is what, every injected anomaly, and the day-level
figures of ``docs/metrics.md`` computed from the simulated events themselves (never from files).

Choices where ``docs/metrics.md`` leaves room (also in ``_truth/README.md``):
- ``gmv_fen`` sums the shop's order amount after coupons (``actual_price``); a channel amount that
  differs is an ``amount_mismatch`` anomaly, not GMV.
- A refund of a duplicate charge counts as a successful refund of its order (the definition says
  "at least one successful refund"), so it enters ``refund_rate`` and ``refunds_fen_on``.
- New buyers and the 30-day windows only see the simulated horizon (nothing before day 1).
- Percentiles are linear interpolation (DuckDB ``quantile_cont``); ratios are floats from integer sums.
- Inventory counts valid imported keys (malformed lines never reach a shop); a voided key leaves stock
  on its void day. Turnover averages the day-end stock values inside the horizon.

Buyers as the data can show them (``simulator/identity_evidence.py``). ``daily_metrics`` counts
buyers by the true ``person_id``, which no resolver can reach: some people leave no record that
joins their identifiers (a substation guest order with a QQ contact seen nowhere else). The
*evidence components* of a person group their identifiers by the records that show them together,
with exactly the links of the platform's identity README: identifiers on one order (with the
openid of its WeChat payment line and the QQ number of a QQ mailbox), one substation account or
one CRM member (all its exported versions), and an Alipay line's masked account when it fits
exactly one known phone or e-mail, that one is the same person's and no record contradicts it.
Components are taken per person, never across persons, so a person is one or more components.
- ``identity_components``: every row of ``identities`` with its graph ``node`` (as the platform
  normalises it), its ``component_id`` and ``is_observed`` (shown by some source record; an
  identifier no record shows is a component of its own).
- ``orders.buyer_component``: the evidence component of each order's buyer (null for the staff's
  test orders: they are no evidence of anyone, and the platform's contracts reject them).
- ``daily_metrics_resolvable`` / ``daily_metrics_by_shop_resolvable``: ``daily_metrics`` with each
  order's ``person_id`` replaced by its ``buyer_component``: ``buyers``, ``new_buyers``,
  ``customer_unit_price_fen`` and ``repurchase_rate_30d`` are what a perfect resolver reports
  (never fewer buyers or new buyers than people); every other column equals the person-based file.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from simulator.config import SimConfig

STOCKOUT_WAIT_S = 600
#: one row per injected anomaly: its kind, the system and record it touched, its day, a detail
ANOMALY_SCHEMA = {
    "kind": pl.Utf8,
    "source": pl.Utf8,
    "record": pl.Utf8,
    "day": pl.Date,
    "detail": pl.Utf8,
}
TRUTH_README = __doc__


def _day(col: str, cfg: SimConfig) -> pl.Expr:
    return ((pl.col(col) - cfg.start_epoch) // 86400).cast(pl.Int64)


def daily_metrics(
    cfg: SimConfig,
    orders: pl.DataFrame,
    refunds: pl.DataFrame,
    keys: pl.DataFrame,
    by_shop: bool = False,
) -> pl.DataFrame:
    """Every day-level KPI of docs/metrics.md, overall or per shop."""
    keys_by = ["shop"] if by_shop else []
    o = orders.filter(~pl.col("is_test"))
    days = pl.DataFrame({"day": list(range(cfg.days))}, schema={"day": pl.Int64})
    if by_shop:
        days = days.join(pl.DataFrame({"shop": ["main", "substation"]}), how="cross")
    g = ["day", *keys_by]

    created = o.group_by(g).agg(created_orders=pl.len(), converted=pl.col("is_paid").sum())
    paid = o.filter(pl.col("is_paid")).with_columns(day=_day("paid_at", cfg))
    ok_refunds = refunds.filter(pl.col("status") == 1)
    refunded = ok_refunds.group_by("order_idx").agg(refund_fen=pl.col("amount_fen").sum())
    paid = paid.join(refunded, on="order_idx", how="left")
    first_day = paid.group_by("person_id").agg(first_day=pl.col("day").min())
    paid = paid.join(first_day, on="person_id", how="left")
    auto = pl.col("is_manual").not_()
    delivery_s = pl.col("delivered_at") - pl.col("paid_at")
    sales = paid.group_by(g).agg(
        paid_orders=pl.len(),
        gmv_fen=pl.col("amount_fen").sum(),
        buyers=pl.col("person_id").n_unique(),
        new_buyers=pl.col("person_id").filter(pl.col("first_day") == pl.col("day")).n_unique(),
        refunded_orders=pl.col("refund_fen").is_not_null().sum(),
        refund_of_paid_fen=pl.col("refund_fen").sum(),
        stockout_orders=(
            pl.col("waited_for_stock")
            & (pl.col("delivered_at").is_null() | (delivery_s > STOCKOUT_WAIT_S))
        ).sum(),
        auto_paid=auto.sum(),
        within_30s=(auto & pl.col("delivered_at").is_not_null() & (delivery_s <= 30)).sum(),
        delivery_p50_s=delivery_s.filter(auto & pl.col("delivered_at").is_not_null()).quantile(
            0.5, interpolation="linear"
        ),
        delivery_p95_s=delivery_s.filter(auto & pl.col("delivered_at").is_not_null()).quantile(
            0.95, interpolation="linear"
        ),
    )
    refunds_on = (
        ok_refunds.join(o.select("order_idx"), on="order_idx", how="semi")
        .with_columns(day=_day("succeeded_at", cfg))
        .group_by(g)
        .agg(refunds_fen_on=pl.col("amount_fen").sum())
    )
    # repurchase: buyers in [d-29, d] with paid orders on ≥ 2 distinct days
    buyer_days = paid.select(*keys_by, "person_id", "day").unique()
    windows = (
        days.join(buyer_days.rename({"day": "bday"}), how="inner", on=keys_by or None)
        if by_shop
        else days.join(buyer_days.rename({"day": "bday"}), how="cross")
    )
    rep = (
        windows.filter((pl.col("bday") <= pl.col("day")) & (pl.col("bday") > pl.col("day") - 30))
        .group_by([*g, "person_id"])
        .agg(n_days=pl.col("bday").n_unique())
        .group_by(g)
        .agg(repurchase_rate_30d=(pl.col("n_days") >= 2).mean())
    )
    out = (
        days.join(created, on=g, how="left")
        .join(sales, on=g, how="left")
        .join(refunds_on, on=g, how="left")
        .join(rep, on=g, how="left")
        .join(inventory_daily(cfg, keys, by=keys_by), on=g, how="left")
    )
    zero = [
        "created_orders",
        "converted",
        "paid_orders",
        "gmv_fen",
        "buyers",
        "new_buyers",
        "refunded_orders",
        "refund_of_paid_fen",
        "stockout_orders",
        "refunds_fen_on",
        "auto_paid",
        "within_30s",
    ]
    out = out.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in zero])
    return out.select(
        *keys_by,
        business_date=pl.lit(cfg.start) + pl.duration(days=pl.col("day")),
        created_orders="created_orders",
        paid_orders="paid_orders",
        gmv_fen="gmv_fen",
        conversion_rate=_ratio("converted", "created_orders"),
        avg_order_value_fen=_ratio("gmv_fen", "paid_orders"),
        customer_unit_price_fen=_ratio("gmv_fen", "buyers"),
        buyers="buyers",
        new_buyers="new_buyers",
        refund_rate=_ratio("refunded_orders", "paid_orders"),
        refund_amount_rate=_ratio("refund_of_paid_fen", "gmv_fen"),
        refunds_fen_on="refunds_fen_on",
        repurchase_rate_30d="repurchase_rate_30d",
        stockout_orders="stockout_orders",
        delivery_p50_s="delivery_p50_s",
        delivery_p95_s="delivery_p95_s",
        delivered_within_30s_rate=_ratio("within_30s", "auto_paid"),
        stock_units="stock_units",
        stock_value_fen="stock_value_fen",
        cogs_fen="cogs_fen",
        inventory_turnover_30d="inventory_turnover_30d",
        days_of_cover="days_of_cover",
    ).sort("business_date", *keys_by)


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


def inventory_daily(cfg: SimConfig, keys: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Stock units/value at each day end, COGS, 30-day turnover and days of cover.

    Built from per-day event counts and cumulative sums, never a days × keys cross product.
    """
    valid = keys.filter(~pl.col("is_malformed"))
    events = pl.concat(
        [
            valid.select(
                *by,
                day=_day("received_at", cfg).clip(lower_bound=-1),
                units=pl.lit(1),
                value="cost_fen",
                cogs=pl.lit(0),
            ),
            valid.filter(pl.col("sold_at").is_not_null()).select(
                *by,
                day=_day("sold_at", cfg),
                units=pl.lit(-1),
                value=-pl.col("cost_fen"),
                cogs="cost_fen",
            ),
            valid.filter(pl.col("voided_at").is_not_null()).select(
                *by,
                day=_day("voided_at", cfg).clip(lower_bound=-1),
                units=pl.lit(-1),
                value=-pl.col("cost_fen"),
                cogs=pl.lit(0),
            ),
        ],
        how="vertical_relaxed",
    ).with_columns(day=pl.col("day").clip(lower_bound=-1))
    grid = pl.DataFrame({"day": list(range(-1, cfg.days))}, schema={"day": pl.Int64})
    if by:
        grid = grid.join(pl.DataFrame({"shop": ["main", "substation"]}), how="cross")
    per_day = (
        grid.join(
            events.group_by("day", *by).agg(
                pl.col("units").sum(), pl.col("value").sum(), pl.col("cogs").sum()
            ),
            on=["day", *by],
            how="left",
        )
        .fill_null(0)
        .sort(*by, "day")
    )
    over = by or None
    cum = per_day.with_columns(
        stock_units=pl.col("units").cum_sum().over(over) if over else pl.col("units").cum_sum(),
        stock_value_fen=pl.col("value").cum_sum().over(over) if over else pl.col("value").cum_sum(),
        cogs_fen="cogs",
    ).filter(pl.col("day") >= 0)
    roll = {"window_size": 30, "min_samples": 1}
    sum30 = pl.col("cogs_fen").rolling_sum(**roll)
    mean30 = pl.col("stock_value_fen").rolling_mean(**roll)
    if over:
        sum30, mean30 = sum30.over(over), mean30.over(over)
    return cum.with_columns(
        inventory_turnover_30d=pl.when(mean30 > 0).then(sum30 / mean30),
        days_of_cover=pl.when(sum30 > 0).then(pl.col("stock_value_fen") / (sum30 / 30)),
    ).select(
        "day",
        *by,
        "stock_units",
        "stock_value_fen",
        "cogs_fen",
        "inventory_turnover_30d",
        "days_of_cover",
    )


def identities(world: dict, crm: pl.DataFrame) -> pl.DataFrame:
    """Every identifier as a source system shows it → the person behind it."""
    o = world["orders"]
    people = world["people"]
    parts = [
        o.filter((pl.col("shop") == "main") & ~pl.col("is_test")).select(
            system=pl.lit("main.orders"),
            id_kind=pl.lit("email"),
            value="buyer_email",
            person_id="person_id",
        ),
        o.filter((pl.col("shop") == "substation") & ~pl.col("is_test")).select(
            system=pl.lit("substation.order"),
            id_kind=pl.lit("contact"),
            value="contact",
            person_id="person_id",
        ),
        o.filter((pl.col("shop") == "substation") & (pl.col("owner") > 0)).select(
            system=pl.lit("substation.user"),
            id_kind=pl.lit("user_id"),
            value=pl.col("owner").cast(pl.Utf8),
            person_id="person_id",
        ),
        crm.select(
            system=pl.lit("crm"),
            id_kind=pl.lit("member_id"),
            value="member_id",
            person_id="person_id",
        ),
        people.select(
            system=pl.lit("crm"), id_kind=pl.lit("qq"), value="qq", person_id="person_id"
        ),
        people.select(
            system=pl.lit("wechat_main"),
            id_kind=pl.lit("openid"),
            value="wechat_openid",
            person_id="person_id",
        ),
        people.select(
            system=pl.lit("wechat_substation"),
            id_kind=pl.lit("openid"),
            value=pl.lit("o") + pl.col("wechat_openid").str.slice(1).str.reverse(),
            person_id="person_id",
        ),
        people.select(
            system=pl.lit("person"), id_kind=pl.lit("phone"), value="phone", person_id="person_id"
        ),
        people.select(
            system=pl.lit("person"),
            id_kind=pl.lit("phone"),
            value="phone_new",
            person_id="person_id",
        ),
        people.select(
            system=pl.lit("person"), id_kind=pl.lit("email"), value="email", person_id="person_id"
        ),
        people.filter(pl.col("email_alt") != "").select(
            system=pl.lit("person"),
            id_kind=pl.lit("email"),
            value="email_alt",
            person_id="person_id",
        ),
    ]
    return pl.concat(parts).unique().sort("system", "id_kind", "value", "person_id")


def products(world: dict, supplier_names: pl.DataFrame) -> pl.DataFrame:
    cat = world["catalog"]
    codes = cat["skus"].select("sku_id", "sku_code")
    parts = [
        cat["goods"].select(
            system=pl.lit("main.goods"),
            product_ref=pl.col("goods_id").cast(pl.Utf8),
            name="gd_name",
            sku_id="sku_id",
        ),
        cat["commodities"].select(
            system=pl.lit("substation.commodity"),
            product_ref=pl.col("commodity_id").cast(pl.Utf8),
            name="name",
            sku_id="sku_id",
        ),
        cat["commodities"].select(
            system=pl.lit("substation.commodity_code"),
            product_ref="code",
            name="name",
            sku_id="sku_id",
        ),
        supplier_names.select(
            system=pl.concat_str([pl.lit("supplier."), pl.col("supplier_code")]),
            product_ref="supplier_sku",
            name="product_name",
            sku_id="sku_id",
        ),
    ]
    return pl.concat(parts).join(codes, on="sku_id").sort("system", "product_ref", "name")


def payment_anomalies(cfg: SimConfig, orders: pl.DataFrame, refunds: pl.DataFrame) -> pl.DataFrame:
    day = pl.lit(cfg.start) + pl.duration(days=_day("paid_at", cfg))
    specs = [
        ("lost_callback", pl.col("lost_callback"), "channel paid, shop still shows unpaid"),
        ("duplicate_payment", pl.col("duplicate_payment"), "paid twice; second charge "),
        ("amount_mismatch", pl.col("amount_delta_fen") != 0, "channel amount differs by fen "),
        ("missing_statement_line", pl.col("missing_in_statement"), "payment absent from statement"),
        (
            "order_no_affix",
            (pl.col("order_no_affix") != "") & pl.col("is_paid"),
            "merchant order no decorated with ",
        ),
        ("day_boundary", pl.col("statement_day_shift") > 0, "statement line in next day's file"),
        ("test_order", pl.col("is_test"), "staff test order (0.01 yuan)"),
        (
            "stockout",
            pl.col("waited_for_stock")
            & (
                pl.col("delivered_at").is_null()
                | (pl.col("delivered_at") - pl.col("paid_at") > STOCKOUT_WAIT_S)
            ),
            "waited for stock",
        ),
    ]
    detail_extra = {
        "duplicate_payment": pl.col("dup_txn_no"),
        "amount_mismatch": pl.col("amount_delta_fen").cast(pl.Utf8),
        "order_no_affix": pl.col("order_no_affix"),
    }
    parts = []
    for kind, cond, text in specs:
        extra = detail_extra.get(kind, pl.lit(""))
        parts.append(
            orders.filter(cond).select(
                kind=pl.lit(kind),
                source=pl.concat_str([pl.col("shop"), pl.lit("."), pl.col("account")]),
                record="order_no",
                day=pl.when(pl.col("paid_at").is_not_null())
                .then(day)
                .otherwise(pl.lit(cfg.start) + pl.duration(days=pl.col("day"))),
                detail=pl.lit(text) + extra,
            )
        )
    late = (
        refunds.filter(pl.col("is_late"))
        .join(orders.select("order_idx", "order_no"), on="order_idx")
        .select(
            kind=pl.lit("late_refund"),
            source=pl.concat_str([pl.col("shop"), pl.lit(".refunds")]),
            record="order_no",
            day=pl.lit(cfg.start) + pl.duration(days=_day("requested_at", cfg)),
            detail=pl.lit("refund requested more than a day after delivery: ") + pl.col("reason"),
        )
    )
    return pl.concat([*parts, late])


def write_truth(
    cfg: SimConfig, root: Path, tables: dict[str, pl.DataFrame], manifest: dict
) -> None:
    out = root / "_truth"
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.write_parquet(out / f"{name}.parquet", compression="zstd", statistics=False)
        if name.startswith("daily_metrics"):
            frame.write_csv(out / f"{name}.csv")
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, default=_json_default) + "\n"
    )
    (out / "README.md").write_text("# The answer key\n" + (TRUTH_README or ""))


def _json_default(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value))
