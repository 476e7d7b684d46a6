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
from simulator.metrics import STOCKOUT_WAIT_S

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


def order_identities(o: pl.DataFrame) -> pl.DataFrame:
    """The identifiers some orders show (``identities`` rows), each once."""
    return pl.concat(
        [
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
        ]
    ).unique()


def identities(order_ids: pl.DataFrame, people: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """Every identifier as a source system shows it → the person behind it.

    ``order_ids`` are ``order_identities`` of the persons' orders; rows are by person (and
    system, kind and value), so the persons can come a block at a time.
    """
    parts = [
        order_ids,
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
    return pl.concat(parts).unique().sort("person_id", "system", "id_kind", "value")


def products(cat: dict, supplier_names: pl.DataFrame) -> pl.DataFrame:
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
    late = refunds.filter(pl.col("is_late")).select(
        kind=pl.lit("late_refund"),
        source=pl.concat_str([pl.col("shop"), pl.lit(".refunds")]),
        record="order_no",
        day=pl.lit(cfg.start) + pl.duration(days=_day("requested_at", cfg)),
        detail=pl.lit("refund requested more than a day after delivery: ") + pl.col("reason"),
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
