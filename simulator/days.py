"""The shop one business day at a time: orders, deliveries, supplier batches and refunds.

``shop_days`` walks the horizon and yields what each day adds. What a day leaves open is carried to
the next (the key queues and the paid orders still waiting for keys, in ``Supply``), and each day
draws from its own random streams, so no day's draws depend on how another day's went.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.identity import buyer_keys
from simulator.orders import OrderDraws
from simulator.refunds import refunds_of
from simulator.stock import WAITING, Supply, delivery_draws


@dataclasses.dataclass(frozen=True)
class ShopDay:
    """What business day ``index`` adds to the shop."""

    index: int
    #: the orders created this day; ``delivered_at`` holds the manual top-ups only
    orders: pl.DataFrame
    #: the automatic deliveries settled this day (orders of this day or earlier ones):
    #: ``order_idx``, ``delivered_at`` (null if never delivered), ``waited_for_stock``
    deliveries: pl.DataFrame
    #: the supplier batches arriving this day, and their keys
    batches: pl.DataFrame
    keys: pl.DataFrame
    #: keys handed out this day: ``key_id``, ``order_idx``, ``sold_at`` and the key's text
    sold: pl.DataFrame
    #: refunds drawn this day (they may be requested up to 14 days later)
    refunds: pl.DataFrame


DELIVERY_SCHEMA = {"order_idx": pl.Int64, "delivered_at": pl.Int64, "waited_for_stock": pl.Boolean}
SOLD_SCHEMA = {
    "key_id": pl.Int64,
    "supplier_code": pl.Utf8,
    "card_no": pl.Utf8,
    "secret": pl.Utf8,
    "order_idx": pl.Int64,
    "sold_at": pl.Int64,
}


def shop_days(
    cfg: SimConfig, catalog: dict[str, pl.DataFrame], people: pl.DataFrame
) -> Iterator[ShopDay]:
    draws = OrderDraws(cfg, catalog, people)
    supply = Supply(cfg, catalog)
    next_order, next_refund = 0, 0
    for d in range(cfg.days):
        orders = draws.day(d, next_order)
        next_order += orders.height
        orders = delivery_draws(cfg, d, buyer_keys(cfg, d, orders, people))
        batches = supply.arrivals(d)
        keys = supply.keys(d, batches)
        auto = orders.filter(
            pl.col("is_paid") & ~pl.col("lost_callback") & ~pl.col("is_manual")
        ).select(list(WAITING))
        settled, sold = supply.deliver(d, auto, keys)
        manual = orders.filter(pl.col("delivered_at").is_not_null()).select(
            *WAITING, "delivered_at", bad_keys=pl.lit(0, dtype=pl.Int64)
        )
        delivered = pl.concat(
            [
                settled.filter(pl.col("delivered_at").is_not_null()).select(manual.columns),
                manual,
            ],
            how="vertical_relaxed",
        ).filter(~pl.col("is_test"))
        duplicates = orders.filter(pl.col("duplicate_payment") & ~pl.col("is_test"))
        refunds = refunds_of(cfg, d, delivered.sort("order_idx"), duplicates, next_refund)
        next_refund += refunds.height
        yield ShopDay(
            index=d,
            orders=orders,
            deliveries=settled.select("order_idx", "delivered_at", "waited_for_stock"),
            batches=batches,
            keys=keys,
            sold=sold,
            refunds=refunds,
        )


class DayStore:
    """The shop days spilled to Parquet, read back a day at a time.

    The writers need each day's records in their final state, which later days settle (an order
    delivered when late stock arrives, a key sold days after it came in). So what a day settles is
    filed under the day the settled record belongs to: ``deliveries/<order day>/<day>``,
    ``sold_to/<order day>/<day>`` and ``sold_from/<key arrival day>/<day>``; the other kinds are
    one file per day. Reading a day back then touches that day's files only.
    """

    KINDS = ("orders", "batches", "keys", "refunds")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.days = 0
        #: first ``order_idx`` and first ``key_id`` of each day, and one past the last day's
        self.order_bounds = [0]
        self.key_bounds = [1]
        self.refund_counts: list[int] = []

    def put(self, day: ShopDay) -> None:
        d = day.index
        for kind in self.KINDS:
            self._write(getattr(day, kind), kind, f"{d:05d}")
        self.order_bounds.append(self.order_bounds[-1] + day.orders.height)
        self.key_bounds.append(self.key_bounds[-1] + day.keys.height)
        self.refund_counts.append(day.refunds.height)
        self.days += 1
        for kind, frame, bounds, col in (
            ("deliveries", day.deliveries, self.order_bounds, "order_idx"),
            ("sold_to", day.sold, self.order_bounds, "order_idx"),
            ("sold_from", day.sold, self.key_bounds, "key_id"),
        ):
            owner = np.searchsorted(bounds, frame[col].to_numpy(), side="right") - 1
            for (owner_day,), part in (
                frame.with_columns(_day=owner)
                .partition_by("_day", as_dict=True, maintain_order=True)
                .items()
            ):
                self._write(part.drop("_day"), kind, f"{owner_day:05d}/{d:05d}")

    def _write(self, frame: pl.DataFrame, kind: str, name: str) -> None:
        path = self.root / kind / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path, compression="lz4")

    def refund_bounds(self, d: int) -> tuple[int, int]:
        """First and last ``refund_idx`` of the refunds drawn on day ``d`` (inclusive)."""
        first = sum(self.refund_counts[:d])
        return first, first + self.refund_counts[d] - 1

    def scan(self, kind: str) -> pl.LazyFrame:
        """Every day's rows of ``kind`` (one of ``KINDS``), in day order."""
        return pl.scan_parquet([self.root / kind / f"{d:05d}.parquet" for d in range(self.days)])

    def read(self, kind: str, d: int) -> pl.DataFrame:
        return pl.read_parquet(self.root / kind / f"{d:05d}.parquet")

    def _settled(self, kind: str, d: int, schema: dict) -> pl.DataFrame:
        parts = sorted((self.root / kind / f"{d:05d}").glob("*.parquet"))
        return (
            pl.concat([pl.read_parquet(p) for p in parts]) if parts else pl.DataFrame(schema=schema)
        )

    def orders(self, d: int) -> pl.DataFrame:
        """The orders created on day ``d``, with their automatic deliveries however late."""
        settled = self._settled("deliveries", d, DELIVERY_SCHEMA)
        return (
            self.read("orders", d)
            .join(settled, on="order_idx", how="left", suffix="_auto", maintain_order="left")
            .with_columns(
                delivered_at=pl.coalesce("delivered_at", "delivered_at_auto"),
                waited_for_stock=pl.coalesce("waited_for_stock_auto", "waited_for_stock"),
            )
            .drop("delivered_at_auto", "waited_for_stock_auto")
        )

    def keys(self, d: int) -> pl.DataFrame:
        """The keys arriving on day ``d``, with the order each was sold to, however late."""
        sold = self._settled("sold_from", d, SOLD_SCHEMA).select("key_id", "order_idx", "sold_at")
        return self.read("keys", d).join(sold, on="key_id", how="left", maintain_order="left")

    def sold_to(self, d: int) -> pl.DataFrame:
        """The keys handed to the orders created on day ``d`` (with their text)."""
        return self._settled("sold_to", d, SOLD_SCHEMA).sort("order_idx", "key_id")
