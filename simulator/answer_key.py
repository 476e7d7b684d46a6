"""The answer key (``_truth/``), gathered while the sources are written a business day at a time.

``AnswerKey`` is handed each day's orders (in their final state) and each day's keys; it writes
their truth rows straight to Parquet and keeps only what the whole-horizon figures need: the
orders' identifier sets for the evidence components, the identifiers they show, the day-level
metrics' running state and the stock events. ``finish`` resolves the evidence components, attaches
each order's buyer component as it copies the orders' rows over, and writes the rest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from simulator.config import SimConfig
from simulator.identity_evidence import evidence_components, order_record_keys
from simulator.metrics import DailyMetrics, inventory_events
from simulator.truth import (
    ANOMALY_SCHEMA,
    identities,
    order_identities,
    payment_anomalies,
    products,
    write_truth,
)

#: the answer key's columns of an order (``buyer_component`` follows)
TRUTH_ORDER_COLUMNS = (
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
IDENTITY_SCHEMA = {"system": pl.Utf8, "id_kind": pl.Utf8, "value": pl.Utf8, "person_id": pl.Int64}
TRUTH_REFUND_COLUMNS = (
    "order_idx",
    "shop",
    "account",
    "txn_no",
    "paid_at",
    "reason",
    "amount_fen",
    "requested_at",
    "is_late",
    "of_duplicate_payment",
    "status",
    "succeeded_at",
    "refund_idx",
    "refund_no",
)


@dataclasses.dataclass
class Totals:
    """What ``cardlake simulate`` prints: orders and paid orders per shop (no test orders), GMV."""

    orders_by_shop: dict[str, int] = dataclasses.field(default_factory=dict)
    paid_by_shop: dict[str, int] = dataclasses.field(default_factory=dict)
    gmv_fen: int = 0
    keys: int = 0

    def add(self, orders: pl.DataFrame) -> None:
        o = orders.filter(~pl.col("is_test"))
        for shop, n in o.group_by("shop").len().iter_rows():
            self.orders_by_shop[shop] = self.orders_by_shop.get(shop, 0) + n
        paid = o.filter(pl.col("is_paid"))
        for shop, n in paid.group_by("shop").len().iter_rows():
            self.paid_by_shop[shop] = self.paid_by_shop.get(shop, 0) + n
        self.gmv_fen += int(paid["amount_fen"].sum())


class _ParquetParts:
    """One Parquet file written a row group at a time (the same rows give the same bytes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        table = frame.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.path, table.schema, compression="zstd", write_statistics=False
            )
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self, empty_schema: dict) -> None:
        if self.writer is None:
            pl.DataFrame(schema=empty_schema).write_parquet(self.path, statistics=False)
        else:
            self.writer.close()


class AnswerKey:
    def __init__(self, cfg: SimConfig, refunds: pl.DataFrame, root: Path, scratch: Path) -> None:
        self.cfg = cfg
        self.refunds = refunds
        self.out = root / "_truth"
        self.out.mkdir(parents=True, exist_ok=True)
        self.parts = scratch / "truth_orders"
        self.parts.mkdir(parents=True)
        # what the evidence components need of each day's orders, spilled until the last day
        self.spill = scratch / "evidence"
        for kind in ("record_keys", "order_ids"):
            (self.spill / kind).mkdir(parents=True)
        self.metrics = {
            "daily_metrics": DailyMetrics(cfg, refunds),
            "daily_metrics_by_shop": DailyMetrics(cfg, refunds, by_shop=True),
        }
        self.variants: list[pl.DataFrame] = []
        self.anomalies: list[pl.DataFrame] = []
        self.inventory: list[pl.DataFrame] = []
        self.order_bounds = [0]
        self.keys = _ParquetParts(self.out / "keys.parquet")
        self.key_schema: dict = {}
        self.totals = Totals()

    def orders_day(self, d: int, orders: pl.DataFrame, refunds: pl.DataFrame) -> None:
        """Day ``d``'s orders, final, and the refunds drawn that day."""
        cfg = self.cfg
        orders.select(
            *TRUTH_ORDER_COLUMNS, "day", "dup_paid_at", "buyer_email", "contact", "owner"
        ).write_parquet(self.parts / f"{d:05d}.parquet", compression="lz4")
        self.order_bounds.append(self.order_bounds[-1] + orders.height)
        for metrics in self.metrics.values():
            metrics.add(orders)
        name = f"{d:05d}.parquet"
        order_record_keys(cfg, orders).write_parquet(self.spill / "record_keys" / name)
        order_identities(orders).write_parquet(self.spill / "order_ids" / name)
        self.variants.append(_identity_variants(cfg, orders))
        self.anomalies.append(payment_anomalies(cfg, orders, refunds))
        self.totals.add(orders)

    def keys_day(self, keys: pl.DataFrame, batches: pl.DataFrame) -> None:
        """The keys arriving on a day, final, and their batches."""
        rows = keys.join(batches.select("batch_id", "in_bad_episode"), on="batch_id")
        self.key_schema = dict(rows.schema)
        self.keys.write(rows)
        self.inventory.append(inventory_events(self.cfg, keys))
        self.totals.keys += keys.height

    def _spilled(self, kind: str) -> list[Path]:
        return sorted((self.spill / kind).glob("*.parquet"))

    def finish(
        self,
        catalog: dict,
        people: pl.DataFrame,
        crm: pl.DataFrame,
        anomalies: list[pl.DataFrame],
        supplier_names: pl.DataFrame,
        batches: pl.DataFrame,
        manifest: dict,
    ) -> pl.DataFrame:
        """Write every remaining answer-key table; returns the anomalies."""
        cfg = self.cfg
        self.keys.close(self.key_schema)
        n_orders = self.order_bounds[-1]
        ids_file = _ParquetParts(self.out / "identities.parquet")
        components_file = _ParquetParts(self.out / "identity_components.parquet")

        def identities_of(lo: int, hi: int) -> pl.DataFrame:
            mine = pl.col("person_id").is_between(lo, hi, closed="left")
            shown = pl.scan_parquet(self._spilled("order_ids")).filter(mine).unique().collect()
            rows = identities(shown, people.filter(mine), crm.filter(mine))
            ids_file.write(rows)
            return rows

        evidence = evidence_components(
            cfg,
            self._spilled("record_keys"),
            n_orders,
            people,
            crm,
            identities_of,
            components_file.write,
            self.spill / "graph",
        )
        ids_file.close(IDENTITY_SCHEMA)
        components_file.close(
            {
                **IDENTITY_SCHEMA,
                "node": pl.Utf8,
                "component_id": pl.Int64,
                "is_observed": pl.Boolean,
            }
        )
        buyer_component = evidence.order_components["component_id"]
        # the buyer KPIs a perfect resolver would report: one buyer per evidence component
        resolvable = {
            "daily_metrics_resolvable": DailyMetrics(cfg, self.refunds, buyer="buyer_component"),
            "daily_metrics_by_shop_resolvable": DailyMetrics(
                cfg, self.refunds, by_shop=True, buyer="buyer_component"
            ),
        }
        orders_file = _ParquetParts(self.out / "orders.parquet")
        for d in range(cfg.days):
            lo, hi = self.order_bounds[d], self.order_bounds[d + 1]
            part = pl.read_parquet(self.parts / f"{d:05d}.parquet").with_columns(
                buyer_component=buyer_component.slice(lo, hi - lo)
            )
            orders_file.write(part.select(*TRUTH_ORDER_COLUMNS, "buyer_component"))
            for metrics in resolvable.values():
                metrics.add(part)
        orders_file.close({})
        inventory = pl.concat(self.inventory)
        figures = {name: m.finish(inventory) for name, m in {**self.metrics, **resolvable}.items()}
        all_anomalies = (
            pl.concat(
                [*self.anomalies, *anomalies, _identity_anomalies(cfg, self.variants, crm)],
                how="vertical_relaxed",
            )
            .select(list(ANOMALY_SCHEMA))
            .sort("kind", "day", "source", "record")
        )
        write_truth(
            cfg,
            self.out.parent,
            {
                "skus": catalog["skus"],
                "suppliers": catalog["suppliers"],
                "people": people,
                "products": products(catalog, supplier_names),
                "refunds": self.refunds.select(TRUTH_REFUND_COLUMNS),
                "batches": batches,
                "anomalies": all_anomalies,
                **figures,
            },
            manifest,
        )
        return all_anomalies


def _identity_variants(cfg: SimConfig, orders: pl.DataFrame) -> pl.DataFrame:
    """Typed variants of phones and e-mails some orders show, each with the first day it shows."""
    email = (
        orders.filter(
            (pl.col("shop") == "main") & (pl.col("buyer_email") != pl.col("buyer_email_true"))
        )
        .group_by("buyer_email")
        .agg(pl.col("day").min())
        .select(kind=pl.lit("email_variant"), record="buyer_email", day="day")
    )
    phone = (
        orders.filter(
            (pl.col("shop") == "substation") & pl.col("contact").str.contains(r"[ +\-]|^86 ")
        )
        .group_by("contact")
        .agg(pl.col("day").min())
        .select(kind=pl.lit("phone_format_variant"), record="contact", day="day")
    )
    return pl.concat([email, phone])


def _identity_anomalies(
    cfg: SimConfig, variants: list[pl.DataFrame], crm: pl.DataFrame
) -> pl.DataFrame:
    """Typed variants of phones and e-mails, one row per distinct variant seen."""
    sources = {"email_variant": "main.orders", "phone_format_variant": "substation.order"}
    details = {
        "email_variant": "e-mail typed with other case or spaces",
        "phone_format_variant": "phone typed with spaces, dashes or country code",
    }
    orders = (
        pl.concat(variants)
        .group_by("kind", "record")
        .agg(pl.col("day").min())
        .select(
            "kind",
            source=pl.col("kind").replace_strict(sources),
            record="record",
            day=pl.lit(cfg.start) + pl.duration(days=pl.col("day")),
            detail=pl.col("kind").replace_strict(details),
        )
    )
    crm_phone = crm.filter(pl.col("_pf") > 0).select(
        kind=pl.lit("phone_format_variant"),
        source=pl.lit("crm"),
        record="member_id",
        day=pl.lit(cfg.start),
        detail=pl.lit(details["phone_format_variant"]),
    )
    return pl.concat([orders, crm_phone])
