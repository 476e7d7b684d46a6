"""``simulate()``: draw the shop a business day at a time, then write every source system and the
answer key from the days read back one at a time.

Memory follows a day's size, not the horizon's: the days are spilled to a scratch folder beside
the output (``simulator.days.DayStore``), each writer takes a day in its final state (orders
delivered or refunded days later are settled by then), and the answer key keeps only what its
whole-horizon figures need (``simulator.answer_key``).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl

from simulator.answer_key import AnswerKey
from simulator.catalog import build_catalog, supplier_formats
from simulator.config import SimConfig
from simulator.days import DayStore, shop_days
from simulator.files import SupplierWriter, write_crm
from simulator.people import build_people
from simulator.render_shops import (
    DayRows,
    main_carmis,
    main_catalogue,
    main_orders,
    main_refunds,
    substation_cards,
    substation_catalogue,
    substation_orders,
)
from simulator.shop_schemas import SUBSTATION_PREFIX, main_shop_metadata, substation_metadata
from simulator.shopdb import ShopTables
from simulator.statements import StatementWriter
from simulator.stock import bad_supplier_episode
from simulator.truth import ANOMALY_SCHEMA

Step = Callable[[str], None]
#: the steps ``simulate`` reports, in order
STEPS = (
    "catalogue",
    "people",
    "shop days",
    "orders, refunds and statements",
    "keys and supplier files",
    "CRM exports",
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


#: what the statements read of an order
STATEMENT_ORDER_COLUMNS = (
    "order_idx",
    "account",
    "order_no",
    "order_no_affix",
    "title",
    "txn_no",
    "person_id",
    "created_at",
    "paid_at",
    "is_paid",
    "amount_fen",
    "amount_delta_fen",
    "missing_in_statement",
    "statement_day_shift",
    "duplicate_payment",
    "dup_txn_no",
    "dup_paid_at",
)


def order_titles(orders: pl.DataFrame, catalog: dict) -> pl.Series:
    """The title each shop gives an order: the main shop's ``<goods> x <qty>`` (test orders marked),
    the substation's commodity name."""
    goods = catalog["goods"].select(pl.col("goods_id").alias("listing_id"), "gd_name")
    comms = catalog["commodities"].select(
        pl.col("commodity_id").alias("listing_id"), pl.col("name").alias("c_name")
    )
    return (
        orders.select("shop", "listing_id", "is_test", "qty")
        .join(goods, on="listing_id", how="left", maintain_order="left")
        .join(comms, on="listing_id", how="left", maintain_order="left")
        .select(
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
            .otherwise(pl.col("c_name"))
        )["title"]
    )


class _ShopDatabases:
    """Both shops' tables, appended a business day at a time."""

    def __init__(self, cfg: SimConfig, world: dict, root: Path, urls: tuple) -> None:
        self.cfg = cfg
        self.world = world
        self.main = ShopTables(root / "db" / MAIN_DB, main_shop_metadata, urls[0])
        self.sub = ShopTables(
            root / "db" / SUBSTATION_DB, substation_metadata, urls[1], SUBSTATION_PREFIX
        )
        self.next_id = {"orders": 1, "refunds": 1, "carmis": 1, "order": 1, "card": 1}
        self.sub_ids: list[pl.DataFrame] = []
        self.stock: list[pl.DataFrame] = []
        self.anomalies: list[pl.DataFrame] = []

    def _append(self, db: ShopTables, table: str, frame: pl.DataFrame) -> None:
        db.append(table, frame)
        self.next_id[table] += frame.height

    def orders_day(self, day: DayRows, refunds: pl.DataFrame) -> None:
        catalog = self.world["catalog"]
        rows, bad = main_orders(self.cfg, day, catalog["goods"], self.next_id["orders"])
        self._append(self.main, "orders", rows)
        self._append(self.main, "refunds", main_refunds(refunds, self.next_id["refunds"]))
        rows, sub_ids, sub_bad = substation_orders(self.cfg, day, self.next_id["order"])
        self._append(self.sub, "order", rows)
        self.sub_ids.append(sub_ids)
        self.anomalies += [bad, sub_bad]

    def keys_day(self, keys: pl.DataFrame) -> None:
        catalog = self.world["catalog"]
        sup_card_no = self.world["supplier_has_card_no"]
        rows = main_carmis(keys, sup_card_no, catalog["goods"], self.next_id["carmis"])
        self._append(self.main, "carmis", rows)
        sub_ids = self.sub_ids_all
        rows = substation_cards(
            keys, sup_card_no, catalog["commodities"], sub_ids, self.next_id["card"]
        )
        self._append(self.sub, "card", rows)
        valid = keys.filter((pl.col("shop") == "main") & ~pl.col("is_malformed"))
        self.stock.append(
            valid.group_by("sku_id").agg(
                sales_volume=pl.col("sold_at").is_not_null().sum(),
                in_stock=(pl.col("sold_at").is_null() & pl.col("voided_at").is_null()).sum(),
            )
        )

    @property
    def sub_ids_all(self) -> pl.DataFrame:
        if len(self.sub_ids) != 1:
            self.sub_ids = [pl.concat(self.sub_ids)]
        return self.sub_ids[0]

    def close(self) -> None:
        catalog = self.world["catalog"]
        stock = pl.concat(self.stock).group_by("sku_id").agg(pl.all().sum())
        for table, frame in main_catalogue(self.cfg, catalog, stock).items():
            self.main.append(table, frame)
        for table, frame in substation_catalogue(self.cfg, catalog, self.world["people"]).items():
            self.sub.append(table, frame)
        self.main.close()
        self.sub.close()


def simulate(
    cfg: SimConfig,
    out: Path,
    shop_db_url: str | None = None,
    substation_db_url: str | None = None,
    step: Step | None = None,
) -> Summary:
    """Write every simulated source system into ``out`` and the answer key beside it.

    The shop is drawn a business day at a time and spilled to a scratch folder; the writers then
    read it back a day at a time, so memory follows a day's size, not the horizon's. The folder is
    replaced whole (written to ``out.tmp`` first), so a failed run leaves the previous sources
    untouched.
    """
    step = step or (lambda _: None)
    out = out.resolve()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    step("catalogue")
    catalog = build_catalog(cfg)
    step("people")
    people = build_people(cfg)
    fmts = supplier_formats()
    world = {
        "catalog": catalog,
        "people": people,
        "supplier_has_card_no": pl.DataFrame(
            {"supplier_code": [f.code for f in fmts], "has_card_no": [f.has_card_no for f in fmts]}
        ),
        "episode": bad_supplier_episode(cfg, catalog["suppliers"]),
    }
    step("shop days")  # orders, payments, batches, keys and refunds
    scratch = tmp / "_scratch"
    store = DayStore(scratch / "days")
    for day in shop_days(cfg, catalog, people):
        store.put(day)
    refunds = store.scan("refunds").collect().sort("refund_idx")
    answer = AnswerKey(cfg, refunds, tmp, scratch)

    step("orders, refunds and statements")
    dbs = _ShopDatabases(cfg, world, tmp, (shop_db_url, substation_db_url))
    statements = StatementWriter(cfg, people, tmp)
    recent: list[pl.DataFrame] = []  # the orders of the last three days, for the statements
    for d in range(cfg.days):
        orders = store.orders(d)
        orders = orders.with_columns(title=order_titles(orders, catalog))
        drawn = refunds.filter(pl.col("refund_idx").is_between(*store.refund_bounds(d)))
        dbs.orders_day(DayRows(d, orders, store.sold_to(d), world["supplier_has_card_no"]), drawn)
        recent = [*recent[-2:], orders.select(STATEMENT_ORDER_COLUMNS)]
        done = refunds.filter(
            (pl.col("status") == 1) & ((pl.col("succeeded_at") - cfg.start_epoch) // 86400 == d)
        )
        done = done.with_columns(
            title=order_titles(done.with_columns(is_test=pl.lit(False)), catalog)
        )
        statements.write_day(d, pl.concat(recent), done)
        answer.orders_day(d, orders, drawn)
    del recent, orders

    step("keys and supplier files")
    suppliers = SupplierWriter(cfg, catalog, tmp)
    for d in range(cfg.days):
        keys, batches = store.keys(d), store.read("batches", d)
        dbs.keys_day(keys)
        suppliers.write_day(d, keys, batches)
        answer.keys_day(keys, batches)
    dbs.close()

    step("CRM exports")
    crm, crm_anoms = write_crm(cfg, people, tmp)

    step("answer key")
    anomalies = answer.finish(
        catalog,
        people,
        crm,
        [
            *dbs.anomalies,
            statements.anomaly_rows(),
            crm_anoms,
            suppliers.anomaly_rows(),
            _supplier_episode_anomaly(cfg, world),
        ],
        suppliers.names_seen(),
        store.scan("batches").collect(),
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
    shutil.rmtree(scratch)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    ok = refunds.filter(pl.col("status") == 1)
    ep = world["episode"]
    t = answer.totals
    return Summary(
        out=out,
        orders_by_shop=t.orders_by_shop,
        paid_by_shop=t.paid_by_shop,
        gmv_fen=t.gmv_fen,
        refunds=ok.height,
        refunds_fen=int(ok["amount_fen"].sum()),
        keys=t.keys,
        files=sum(1 for p in out.rglob("*") if p.is_file() and "_truth" not in p.parts),
        anomalies=dict(sorted(anomalies.group_by("kind").len().iter_rows())),
        bad_supplier=(ep[0], str(cfg.day(ep[1])), str(cfg.day(ep[2]))) if ep else None,
    )


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
