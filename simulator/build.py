"""``simulate()``: build the whole world once, then write every source system and the answer key."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl

from simulator.catalog import build_catalog, supplier_formats
from simulator.config import SimConfig
from simulator.days import shop_days
from simulator.files import write_crm, write_suppliers
from simulator.identity_evidence import evidence_components, identity_components
from simulator.people import build_people
from simulator.render_shops import main_shop_frames, substation_frames
from simulator.shopdb import main_shop_metadata, substation_metadata, write_sqlalchemy, write_sqlite
from simulator.statements import write_statements
from simulator.stock import bad_supplier_episode
from simulator.truth import (
    ANOMALY_SCHEMA,
    daily_metrics,
    identities,
    payment_anomalies,
    products,
    write_truth,
)

Step = Callable[[str], None]
#: the steps ``simulate`` reports, in order
STEPS = (
    "catalogue",
    "people",
    "shop days",
    "shop databases",
    "channel statements",
    "CRM exports",
    "supplier files",
    "answer key",
)

MAIN_DB = "shop_main.sqlite"
SUBSTATION_DB = "shop_substation.sqlite"


@dataclasses.dataclass(frozen=True)
class Summary:
    out: Path
    orders_by_shop: dict[str, int]
    paid_by_shop: dict[str, int]
    gmv_fen: int
    refunds: int
    refunds_fen: int
    keys: int
    files: int
    anomalies: dict[str, int]
    bad_supplier: tuple[str, str, str] | None


def build_world(cfg: SimConfig, step: Step) -> dict:
    step("catalogue")
    catalog = build_catalog(cfg)
    step("people")
    people = build_people(cfg)
    step("shop days")  # orders, payments, batches, keys and refunds
    days = list(shop_days(cfg, catalog, people))
    deliveries = pl.concat([d.deliveries for d in days])
    orders = (
        pl.concat([d.orders for d in days])
        .join(deliveries, on="order_idx", how="left", suffix="_auto", maintain_order="left")
        .with_columns(
            delivered_at=pl.coalesce("delivered_at", "delivered_at_auto"),
            waited_for_stock=pl.coalesce("waited_for_stock_auto", "waited_for_stock"),
        )
        .drop("delivered_at_auto", "waited_for_stock_auto")
    )
    batches = pl.concat([d.batches for d in days])
    keys = pl.concat([d.keys for d in days]).join(
        pl.concat([d.sold for d in days]), on="key_id", how="left", maintain_order="left"
    )
    refunds = pl.concat([d.refunds for d in days]).sort("refund_idx")
    del days
    fmts = supplier_formats()
    goods_title = catalog["goods"].select(pl.col("goods_id").alias("listing_id"), "gd_name")
    titles = (
        orders.select("order_idx", "shop", "listing_id", "is_test", "qty")
        .join(goods_title, on="listing_id", how="left")
        .join(
            catalog["commodities"].select(
                pl.col("commodity_id").alias("listing_id"), pl.col("name").alias("c_name")
            ),
            on="listing_id",
            how="left",
        )
        .select(
            "order_idx",
            title=pl.when(pl.col("shop") == "main")
            .then(
                pl.concat_str(
                    [
                        pl.when(pl.col("is_test")).then(pl.lit("测试订单-")).otherwise(pl.lit("")),
                        pl.col("gd_name"),
                        pl.lit(" x "),
                        pl.col("qty").cast(pl.Utf8),
                    ]
                )
            )
            .otherwise(pl.col("c_name")),
        )
    )
    return {
        "catalog": catalog,
        "people": people,
        "orders": orders,
        "batches": batches,
        "keys": keys,
        "refunds": refunds,
        "title_of": titles,
        "supplier_has_card_no": pl.DataFrame(
            {"supplier_code": [f.code for f in fmts], "has_card_no": [f.has_card_no for f in fmts]}
        ),
        "episode": bad_supplier_episode(cfg, catalog["suppliers"]),
    }


def simulate(
    cfg: SimConfig,
    out: Path,
    shop_db_url: str | None = None,
    substation_db_url: str | None = None,
    step: Step | None = None,
) -> Summary:
    """Write every simulated source system into ``out`` and the answer key beside it.

    The folder is replaced whole (written to ``out.tmp`` first), so a failed run leaves the
    previous sources untouched.
    """
    step = step or (lambda _: None)
    world = build_world(cfg, step)
    out = out.resolve()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    step("shop databases")
    main_frames, main_bad = main_shop_frames(cfg, world)
    sub_frames, sub_bad = substation_frames(cfg, world)
    write_sqlite(tmp / "db" / MAIN_DB, main_shop_metadata(), main_frames)
    write_sqlite(tmp / "db" / SUBSTATION_DB, substation_metadata(), sub_frames)
    if shop_db_url:
        write_sqlalchemy(shop_db_url, main_shop_metadata(), main_frames)
    if substation_db_url:
        write_sqlalchemy(substation_db_url, substation_metadata(), sub_frames)
    del main_frames, sub_frames  # millions of rendered rows: free them before the files

    step("channel statements")
    stmt_anoms = write_statements(cfg, world, tmp)
    step("CRM exports")
    crm, crm_anoms = write_crm(cfg, world["people"], tmp)
    step("supplier files")
    sup_anoms, sup_names = write_suppliers(cfg, world, tmp)

    step("answer key")
    orders, refunds, keys = world["orders"], world["refunds"], world["keys"]
    anomalies = (
        pl.concat(
            [
                payment_anomalies(cfg, orders, refunds),
                main_bad,
                sub_bad,
                stmt_anoms,
                crm_anoms,
                sup_anoms,
                _identity_anomalies(cfg, orders, crm),
                _supplier_episode_anomaly(cfg, world),
            ],
            how="vertical_relaxed",
        )
        .select(list(ANOMALY_SCHEMA))
        .sort("kind", "day", "source", "record")
    )
    truth_orders = orders.select(
        "order_idx",
        "shop",
        "order_no",
        "person_id",
        "sku_id",
        "listing_id",
        "qty",
        "amount_fen",
        "created_at",
        "is_paid",
        "paid_at",
        "delivered_at",
        "account",
        "channel",
        "txn_no",
        "is_manual",
        "is_test",
        "lost_callback",
        "duplicate_payment",
        "dup_txn_no",
        "amount_delta_fen",
        "missing_in_statement",
        "order_no_affix",
        "statement_day_shift",
        "waited_for_stock",
        "delivery_failed",
    )
    truth_keys = keys.join(world["batches"].select("batch_id", "in_bad_episode"), on="batch_id")
    truth_ids = identities(world, crm)
    evidence = evidence_components(cfg, world, crm, truth_ids)
    buyer_component = evidence.order_components.rename({"component_id": "buyer_component"})
    truth_orders = truth_orders.join(
        buyer_component, on="order_idx", how="left", maintain_order="left"
    )
    # the buyer KPIs a perfect resolver would report: one buyer per evidence component
    resolvable = orders.join(buyer_component, on="order_idx", how="left").with_columns(
        person_id="buyer_component"
    )
    write_truth(
        cfg,
        tmp,
        {
            "skus": world["catalog"]["skus"],
            "suppliers": world["catalog"]["suppliers"],
            "people": world["people"],
            "identities": truth_ids,
            "identity_components": identity_components(truth_ids, evidence),
            "products": products(world, sup_names),
            "orders": truth_orders,
            "refunds": refunds.drop("channel"),
            "keys": truth_keys,
            "batches": world["batches"],
            "anomalies": anomalies,
            "daily_metrics": daily_metrics(cfg, orders, refunds, keys),
            "daily_metrics_by_shop": daily_metrics(cfg, orders, refunds, keys, by_shop=True),
            "daily_metrics_resolvable": daily_metrics(cfg, resolvable, refunds, keys),
            "daily_metrics_by_shop_resolvable": daily_metrics(
                cfg, resolvable, refunds, keys, by_shop=True
            ),
        },
        {
            "seed": cfg.seed,
            "start": cfg.start,
            "days": cfg.days,
            "orders_per_day": cfg.orders_per_day,
            "skus": cfg.skus,
            "mess": cfg.mess,
            "bad_supplier_episode": _episode_json(cfg, world["episode"]),
            "shop_databases": {"main": f"db/{MAIN_DB}", "substation": f"db/{SUBSTATION_DB}"},
        },
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return _summary(cfg, out, world, anomalies)


def _episode_json(cfg: SimConfig, episode: tuple[str, int, int] | None) -> dict | None:
    if episode is None:
        return None
    code, first, last = episode
    return {"supplier": code, "first_day": cfg.day(first), "last_day": cfg.day(last)}


def _supplier_episode_anomaly(cfg: SimConfig, world: dict) -> pl.DataFrame:
    if world["episode"] is None:
        return pl.DataFrame(schema=ANOMALY_SCHEMA)
    code, first, last = world["episode"]
    return pl.DataFrame(
        [
            {
                "kind": "bad_supplier_episode",
                "source": f"supplier.{code}",
                "record": code,
                "day": cfg.day(first),
                "detail": f"invalid-key rate spikes for batches arriving {cfg.day(first)}..{cfg.day(last)}",
            }
        ],
        schema=ANOMALY_SCHEMA,
    )


def _identity_anomalies(cfg: SimConfig, orders: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """Typed variants of phones and e-mails, one row per distinct variant seen."""
    day = pl.lit(cfg.start) + pl.duration(days=pl.col("day"))
    email = (
        orders.filter(
            (pl.col("shop") == "main") & (pl.col("buyer_email") != pl.col("buyer_email_true"))
        )
        .group_by("buyer_email")
        .agg(pl.col("day").min())
        .select(
            kind=pl.lit("email_variant"),
            source=pl.lit("main.orders"),
            record="buyer_email",
            day=day,
            detail=pl.lit("e-mail typed with other case or spaces"),
        )
    )
    phone = (
        orders.filter(
            (pl.col("shop") == "substation") & pl.col("contact").str.contains(r"[ +\-]|^86 ")
        )
        .group_by("contact")
        .agg(pl.col("day").min())
        .select(
            kind=pl.lit("phone_format_variant"),
            source=pl.lit("substation.order"),
            record="contact",
            day=day,
            detail=pl.lit("phone typed with spaces, dashes or country code"),
        )
    )
    crm_phone = crm.filter(pl.col("_pf") > 0).select(
        kind=pl.lit("phone_format_variant"),
        source=pl.lit("crm"),
        record="member_id",
        day=pl.lit(cfg.start),
        detail=pl.lit("phone typed with spaces, dashes or country code"),
    )
    return pl.concat([email, phone, crm_phone])


def _summary(cfg: SimConfig, out: Path, world: dict, anomalies: pl.DataFrame) -> Summary:
    o = world["orders"].filter(~pl.col("is_test"))
    by_shop = dict(o.group_by("shop").len().iter_rows())
    paid = dict(o.filter(pl.col("is_paid")).group_by("shop").len().iter_rows())
    ok = world["refunds"].filter(pl.col("status") == 1)
    ep = world["episode"]
    return Summary(
        out=out,
        orders_by_shop=by_shop,
        paid_by_shop=paid,
        gmv_fen=int(o.filter(pl.col("is_paid"))["amount_fen"].sum()),
        refunds=ok.height,
        refunds_fen=int(ok["amount_fen"].sum()),
        keys=world["keys"].height,
        files=sum(1 for p in out.rglob("*") if p.is_file() and "_truth" not in p.parts),
        anomalies=dict(sorted(anomalies.group_by("kind").len().iter_rows())),
        bad_supplier=(ep[0], str(cfg.day(ep[1])), str(cfg.day(ep[2]))) if ep else None,
    )
