"""The shop one business day at a time: orders, deliveries, supplier batches and refunds.

``shop_days`` walks the horizon and yields what each day adds. What a day leaves open is carried to
the next (the key queues and the paid orders still waiting for keys, in ``Supply``), and each day
draws from its own random streams, so the days a shop has do not depend on whether it is built a
day at a time or all at once, and a day's draws do not shift when the days after it change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

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
    #: keys handed out this day: ``key_id``, ``order_idx``, ``sold_at``
    sold: pl.DataFrame
    #: refunds drawn this day (they may be requested up to 14 days later)
    refunds: pl.DataFrame


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
