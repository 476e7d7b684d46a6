"""Card keys: supplier batches in, keys out to paid orders in payment order, stock-outs in between.

Supply is planned per (shop, SKU): the first batch and the refill interval (daily to every four
days) from the demand the shop expects of it (its share of the listings' popularity), each refill's
size from the sales seen so far (a moving average of the paid units per day). Some batches arrive a
day late, and then paid orders wait (a stock-out). Keys are handed out first-in first-out: within a day, with one
vectorised pass, order *i* of a SKU takes keys ``[cum_i - qty_i, cum_i)`` of that SKU's queue of
unsold keys, and is delivered when the last of them has arrived. Orders the queue cannot serve yet
wait for the next day's arrivals, so serving the days one after another is the same as serving the
whole horizon at once.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.text import DIGITS, UPPER_ALNUM, random_code_series

BAD_EPISODE_DEFECT_RATE = 0.3


def bad_supplier_episode(cfg: SimConfig, suppliers: pl.DataFrame) -> tuple[str, int, int] | None:
    """(supplier, first day index, last day index) of the bad week, or None."""
    rng = cfg.rng("bad_supplier")
    if rng.uniform() >= cfg.profile.bad_supplier_episode:
        return None
    csv_suppliers = suppliers.filter(pl.col("file_kind") == "csv")["supplier_code"].to_list()
    code = csv_suppliers[int(rng.integers(0, min(4, len(csv_suppliers))))]
    first = cfg.days // 3
    last = min(cfg.days - 1, first + 4)
    return code, first, last


#: mean units per order (the quantity distribution in ``simulator.orders``) and the share paid
EXPECTED_QTY = 1.31
EXPECTED_PAID = 0.74
#: shops order for a little more than they expect: demand runs above the catalogue-wide
#: expectation on the SKUs already launched and on busy weekdays
SAFETY = 1.1
#: below this many expected sales per refill interval a listing gets its first batch only
MIN_REFILL_SALES = 0.5
#: weight of the latest day in the moving average of paid units a refill is sized by
RATE_WEIGHT = 0.3
NEVER = np.iinfo(np.int64).max

_QUEUE = {
    "shop": pl.Utf8,
    "sku_id": pl.Int64,
    "received_at": pl.Int64,
    "key_id": pl.Int64,
    "is_defective": pl.Boolean,
    "supplier_code": pl.Utf8,
    "card_no": pl.Utf8,
    "secret": pl.Utf8,
}
#: what a paid order waiting for keys carries, so its delivery and refunds can be drawn later
WAITING = {
    "order_idx": pl.Int64,
    "shop": pl.Utf8,
    "sku_id": pl.Int64,
    "paid_at": pl.Int64,
    "qty": pl.Int64,
    "latency_s": pl.Int64,
    "account": pl.Utf8,
    "channel": pl.Utf8,
    "txn_no": pl.Utf8,
    "amount_fen": pl.Int64,
    "is_test": pl.Boolean,
    "person_id": pl.Int64,
    "order_no": pl.Utf8,
    "order_no_affix": pl.Utf8,
    "listing_id": pl.Int64,
}


class Supply:
    """The suppliers and the key queues of both shops, carried from one business day to the next.

    ``arrivals(d)`` gives the batches that arrive on day ``d`` (and, on the first day, the stock
    already there), ``keys(d, batches)`` their keys, and ``deliver(d, orders, keys)`` hands keys to
    the paid orders that can be served by the end of day ``d``. Every day draws from its own
    streams.
    """

    def __init__(self, cfg: SimConfig, catalog: dict[str, pl.DataFrame]) -> None:
        self.cfg = cfg
        self.episode = bad_supplier_episode(cfg, catalog["suppliers"])
        self.plan = _listing_plan(cfg, catalog)
        #: paid units per day per planned listing (the plan's rows), as the shop has seen them
        self.rate = self.plan["daily_demand"].to_numpy().copy()
        self.late: pl.DataFrame | None = None  # batches ordered for a day that arrive a day late
        self.queue = pl.DataFrame(schema=_QUEUE)
        self.waiting = pl.DataFrame(schema=WAITING)
        self.next_batch_id = 1
        self.next_key_id = 1

    def _planned(self, p: int) -> pl.DataFrame:
        """Batches the shops order for day ``p``: first stock before launch, then refills."""
        cfg = self.cfg
        plan = self.plan
        first = plan["first_day"].to_numpy() == p
        interval = plan["interval"].to_numpy()
        refill = (p >= 1) & (p % interval == 0) & (p > plan["first_day"].to_numpy())
        refill &= plan["refills"].to_numpy()
        pick = first | refill
        rows = plan.filter(pl.Series(pick))
        first = rows["first_day"].to_numpy() == p
        rng = cfg.rng(f"batches/{p}")
        n = rows.height
        lam = np.where(first, rows["daily_demand"].to_numpy(), self.rate[pick])
        intv = rows["interval"].to_numpy()
        late = ~first & (rng.uniform(size=n) < cfg.profile.late_batch)
        arrival_day = p + late
        size = np.where(
            first,
            np.maximum(3, np.round(lam * (intv + 0.5) * rng.uniform(1.0, 1.6, n))),
            np.maximum(2, np.round(lam * intv * rng.uniform(0.85, 1.45, n))),
        ).astype(np.int64)
        return rows.with_columns(
            batch_seq=pl.Series(np.where(first, 0, p // intv)),
            arrival_at=pl.Series(
                cfg.start_epoch + arrival_day * 86400 + rng.integers(2 * 3600, 10 * 3600, n)
            ),
            arrival_day=pl.Series(arrival_day),
            size=pl.Series(size),
            is_late=pl.Series(late),
        )

    def arrivals(self, d: int) -> pl.DataFrame:
        """One row per batch arriving on day ``d`` (with the stock before day 0 on day 0)."""
        cfg = self.cfg
        planned = [*([self._planned(-1)] if d == 0 else []), self._planned(d)]
        batches = pl.concat([p for p in (self.late, *planned) if p is not None])
        self.late = batches.filter(pl.col("arrival_day") > d)
        batches = batches.filter(
            (pl.col("arrival_day") <= d) & (pl.col("arrival_at") < cfg.end_epoch)
        )
        if self.episode is not None:
            code, first, last = self.episode
            in_episode = (
                (pl.col("supplier_code") == code)
                & (pl.col("arrival_day") >= first - 1)
                & (pl.col("arrival_day") <= last)
            )
            batches = batches.with_columns(
                in_bad_episode=in_episode,
                defect_rate=pl.when(in_episode)
                .then(BAD_EPISODE_DEFECT_RATE)
                .otherwise("defect_rate"),
            )
        else:
            batches = batches.with_columns(in_bad_episode=pl.lit(False))
        batches = batches.sort("arrival_at", "shop", "sku_id").with_columns(
            batch_id=pl.int_range(pl.len(), dtype=pl.Int64) + self.next_batch_id
        )
        self.next_batch_id += batches.height
        return batches.select("batch_id", pl.exclude("batch_id"))

    def keys(self, d: int, batches: pl.DataFrame) -> pl.DataFrame:
        """Every key row of the day's batches, with its fate flags (defective, void, malformed, dup)."""
        cfg = self.cfg
        rng = cfg.rng(f"keys/{d}")
        sizes = batches["size"].to_numpy()
        b = np.repeat(np.arange(batches.height), sizes)
        n = len(b)
        defect_rate = batches["defect_rate"].to_numpy()[b]
        defective = rng.uniform(size=n) < defect_rate
        # a fifth of the bad keys are caught when the shop imports them and voided before sale
        void = defective & (rng.uniform(size=n) < 0.2)
        malformed = rng.uniform(size=n) < cfg.profile.malformed_key
        duplicated = ~malformed & (rng.uniform(size=n) < cfg.profile.duplicate_key_in_batch)
        arrival = batches["arrival_at"].to_numpy()[b]
        secret = random_code_series(rng, n, 16, UPPER_ALNUM)
        card_no = random_code_series(rng, n, 16, DIGITS)
        first = self.next_key_id
        self.next_key_id += n
        return pl.DataFrame(
            {
                "key_id": np.arange(first, first + n, dtype=np.int64),
                "batch_id": batches["batch_id"].to_numpy()[b],
                "shop": batches["shop"].to_numpy()[b],
                "sku_id": batches["sku_id"].to_numpy()[b],
                "supplier_code": batches["supplier_code"].to_numpy()[b],
                "cost_fen": batches["cost_fen"].to_numpy()[b],
                "received_at": arrival,
                "card_no": card_no,
                "secret": secret,
                "is_defective": defective,
                "is_malformed": malformed,
                "is_duplicated": duplicated,
                "voided_at": pl.Series(
                    np.where(void & ~malformed, arrival + rng.integers(1800, 12 * 3600, n), -1)
                ).replace(-1, None),
            },
            schema_overrides={"shop": pl.Utf8, "supplier_code": pl.Utf8},
        )

    def deliver(
        self, d: int, paid: pl.DataFrame, keys: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Serve the orders waiting for keys, FIFO per (shop, SKU), with the keys arrived by now.

        ``paid`` are the day's paid auto-delivery orders (``WAITING`` columns), ``keys`` the day's
        keys. Returns (the orders settled this day with ``delivered_at``, ``waited_for_stock`` and
        ``bad_keys``; the keys sold, with ``order_idx``, ``sold_at`` and the key's text). An order paid after the
        day's end waits for the next day, so the orders are served in payment order across days.
        """
        cfg = self.cfg
        last = d == cfg.days - 1
        cutoff = cfg.end_epoch if last else cfg.start_epoch + (d + 1) * 86400
        usable = keys.filter(~pl.col("is_malformed") & pl.col("voided_at").is_null())
        queue = (
            pl.concat([self.queue, usable.select(list(_QUEUE))])
            .sort("shop", "sku_id", "received_at", "key_id")
            .with_row_index("pos")
        )
        waiting = pl.concat([self.waiting, paid.select(list(WAITING))])
        sales = self.plan.select("shop", "sku_id").join(
            paid.group_by("shop", "sku_id").agg(pl.col("qty").sum()),
            on=["shop", "sku_id"],
            how="left",
            maintain_order="left",
        )
        self.rate = (1 - RATE_WEIGHT) * self.rate + RATE_WEIGHT * sales["qty"].fill_null(
            0
        ).to_numpy()
        offsets = queue.group_by("shop", "sku_id", maintain_order=True).agg(
            pl.col("pos").first().alias("q_off"), pl.len().alias("q_len")
        )
        wants = (
            waiting.filter(pl.col("paid_at") < cutoff)
            .sort("shop", "sku_id", "paid_at", "order_idx")
            .with_columns(cum=pl.col("qty").cum_sum().over("shop", "sku_id"))
            .join(offsets, on=["shop", "sku_id"], how="left")
            .with_columns(pl.col("q_off").fill_null(0), pl.col("q_len").fill_null(0))
        )
        cum = wants["cum"].to_numpy()
        qty = wants["qty"].to_numpy()
        has_keys = cum <= wants["q_len"].to_numpy()
        q_arrival = queue["received_at"].to_numpy()
        last_pos = np.where(has_keys, wants["q_off"].to_numpy() + cum - 1, 0)
        last_arrival = np.where(has_keys, q_arrival[last_pos] if len(q_arrival) else 0, NEVER)
        ready = wants["paid_at"].to_numpy() + wants["latency_s"].to_numpy()
        delivered_at = np.maximum(ready, last_arrival)
        delivered = has_keys & (delivered_at < cfg.end_epoch)
        wants = wants.with_columns(
            delivered_at=pl.Series(np.where(delivered, delivered_at, -1)).replace(-1, None),
            key_from=pl.Series(np.where(delivered, wants["q_off"].to_numpy() + cum - qty, -1)),
            waited_for_stock=pl.Series(ready < last_arrival),
            settled=pl.Series(has_keys | last),
        )
        done = wants.filter(pl.col("delivered_at").is_not_null())
        counts = done["qty"].to_numpy()
        starts = done["key_from"].to_numpy()
        pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        sold = queue[pos].select(
            "key_id",
            "is_defective",
            "supplier_code",
            "card_no",
            "secret",
            order_idx=pl.Series(np.repeat(done["order_idx"].to_numpy(), counts)),
            sold_at=pl.Series(np.repeat(done["delivered_at"].to_numpy(), counts)),
        )
        bad = sold.filter("is_defective").group_by("order_idx").agg(pl.len().alias("bad_keys"))
        used = (
            wants.filter(pl.Series(has_keys))
            .group_by("shop", "sku_id")
            .agg(pl.col("cum").max().alias("used"))
        )
        self.queue = (
            queue.join(offsets, on=["shop", "sku_id"], how="left")
            .join(used, on=["shop", "sku_id"], how="left")
            .filter(pl.col("pos") - pl.col("q_off") >= pl.col("used").fill_null(0))
            .select(list(_QUEUE))
        )
        self.waiting = pl.concat(
            [
                wants.filter(~pl.col("settled")).select(list(WAITING)),
                waiting.filter(pl.col("paid_at") >= cutoff),
            ]
        )
        settled = (
            wants.filter("settled")
            .select(*WAITING, "delivered_at", "waited_for_stock")
            .join(bad, on="order_idx", how="left")
            .with_columns(pl.col("bad_keys").fill_null(0).cast(pl.Int64))
            .sort("order_idx")
        )
        return settled, sold.drop("is_defective").sort("order_idx", "key_id")


def delivery_draws(cfg: SimConfig, d: int, orders: pl.DataFrame) -> pl.DataFrame:
    """How fast the shop hands over each of the day's orders, and the manual (直充) top-ups.

    Adds ``latency_s`` (payment to automatic delivery), ``delivery_failed`` and, for manual orders
    staff topped up within minutes, ``delivered_at``.
    """
    rng = cfg.rng(f"delivery/{d}")
    n = orders.height
    latency = np.where(
        rng.uniform(size=n) < 0.03,
        rng.integers(10, 180, n),
        np.clip(np.round(rng.lognormal(np.log(2.0), 0.5, n)), 1, 9),
    ).astype(np.int64)
    manual = (
        orders["is_manual"].to_numpy()
        & orders["is_paid"].to_numpy()
        & ~orders["lost_callback"].to_numpy()
    )
    manual_at = orders["paid_at"].fill_null(0).to_numpy() + rng.integers(90, 1800, n)
    manual_failed = manual & (rng.uniform(size=n) < 0.01)
    manual_done = manual & ~manual_failed & (manual_at < cfg.end_epoch)
    return orders.with_columns(
        latency_s=pl.Series(latency),
        delivered_at=pl.Series(np.where(manual_done, manual_at, -1)).replace(-1, None),
        delivery_failed=pl.Series(manual_failed),
        waited_for_stock=pl.lit(False),
    )


def _listing_plan(cfg: SimConfig, catalog: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Per listed auto-delivery (shop, SKU): expected daily demand, refill interval, first day."""
    skus = catalog["skus"]
    shares = {"main": cfg.main_shop_share, "substation": 1 - cfg.main_shop_share}
    listed = pl.concat(
        [
            catalog["goods"].select(pl.lit("main").alias("shop"), "sku_id"),
            catalog["commodities"].select(pl.lit("substation").alias("shop"), "sku_id"),
        ]
    ).join(
        skus.select("sku_id", "is_manual", "supplier_code", "cost_fen", "launch_day", "popularity"),
        on="sku_id",
    )
    daily = (
        pl.col("popularity")
        / pl.col("popularity").sum().over("shop")
        * pl.col("shop").replace_strict(shares, return_dtype=pl.Float64)
        * (cfg.orders_per_day * EXPECTED_PAID * EXPECTED_QTY * SAFETY)
    )
    plan = (
        listed.with_columns(daily_demand=daily)
        .filter(~pl.col("is_manual"))
        .drop("popularity")
        .sort("shop", "sku_id")
    )
    lam = plan["daily_demand"].to_numpy()
    interval = np.where(lam >= 40, 1, np.where(lam >= 4, 2, 4))
    launch = plan["launch_day"].to_numpy()
    defect = catalog["suppliers"].select("supplier_code", "defect_rate")
    return plan.with_columns(
        interval=pl.Series(interval.astype(np.int64)),
        refills=pl.Series(lam * interval >= MIN_REFILL_SALES),
        first_day=pl.Series(np.where(launch > 0, launch - 1, -1).astype(np.int64)),
    ).join(defect, on="supplier_code", how="left", maintain_order="left")
