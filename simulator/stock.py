"""Card keys: supplier batches in, keys out to paid orders in payment order, stock-outs in between.

Supply is planned per (shop, SKU) from the demand the shop sees, in batches every one to four days;
some arrive late, and then paid orders wait (a stock-out). Keys are handed out first-in first-out
with one vectorised pass: order *i* of a SKU takes keys ``[cum_i - qty_i, cum_i)`` of that SKU's
queue, and is delivered when the last of them has arrived.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.text import DIGITS, UPPER_ALNUM, random_code_series

BAD_EPISODE_DEFECT_RATE = 0.18


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


def plan_batches(
    cfg: SimConfig, catalog: dict[str, pl.DataFrame], orders: pl.DataFrame
) -> pl.DataFrame:
    """One row per supplier batch: shop, SKU, supplier, arrival, size, defect rate."""
    rng = cfg.rng("batches")
    skus = catalog["skus"]
    demand = (
        orders.filter(pl.col("is_paid") & ~pl.col("lost_callback") & ~pl.col("is_manual"))
        .group_by("shop", "sku_id")
        .agg(pl.col("qty").sum().alias("demand"))
    )
    listed = pl.concat(
        [
            catalog["goods"].select(pl.lit("main").alias("shop"), "sku_id"),
            catalog["commodities"].select(pl.lit("substation").alias("shop"), "sku_id"),
        ]
    ).join(
        skus.select("sku_id", "is_manual", "supplier_code", "cost_fen", "launch_day"), on="sku_id"
    )
    plan = (
        listed.filter(~pl.col("is_manual"))
        .join(demand, on=["shop", "sku_id"], how="left")
        .with_columns(pl.col("demand").fill_null(0))
        .sort("shop", "sku_id")
    )
    lam = plan["demand"].to_numpy() / cfg.days
    interval = np.where(lam >= 40, 1, np.where(lam >= 4, 2, 4))
    n_refill = np.where(lam > 0, (cfg.days - 1) // interval, 0)
    nb = 1 + n_refill
    row = np.repeat(np.arange(plan.height), nb)
    j = np.arange(len(row)) - np.repeat(np.cumsum(nb) - nb, nb)
    lam_b, int_b = lam[row], interval[row]
    launch = plan["launch_day"].to_numpy()[row]
    first_day = np.where(launch > 0, launch - 1, -1)
    arrival_day = np.where(j == 0, first_day, j * int_b)
    late = (j > 0) & (rng.uniform(size=len(row)) < cfg.profile.late_batch)
    arrival_day = arrival_day + late
    arrival = cfg.start_epoch + arrival_day * 86400 + rng.integers(2 * 3600, 10 * 3600, len(row))
    size = np.where(
        j == 0,
        np.maximum(3, np.round(lam_b * (int_b + 0.5) * rng.uniform(1.0, 1.6, len(row)))),
        np.maximum(2, np.round(lam_b * int_b * rng.uniform(0.85, 1.45, len(row)))),
    ).astype(np.int64)
    # a supplier's batches arrive in its daily delivery file; the last ones may fall past the horizon
    keep = arrival < cfg.end_epoch
    batches = (
        plan[row]
        .with_columns(
            batch_seq=pl.Series(j),
            arrival_at=pl.Series(arrival),
            arrival_day=pl.Series(arrival_day),
            size=pl.Series(size),
            is_late=pl.Series(late),
        )
        .filter(pl.Series(keep))
    )

    defect = catalog["suppliers"].select("supplier_code", "defect_rate")
    batches = batches.join(defect, on="supplier_code", how="left")
    episode = bad_supplier_episode(cfg, catalog["suppliers"])
    if episode is not None:
        code, first, last = episode
        in_episode = (
            (pl.col("supplier_code") == code)
            & (pl.col("arrival_day") >= first - 1)
            & (pl.col("arrival_day") <= last)
        )
        batches = batches.with_columns(
            in_bad_episode=in_episode,
            defect_rate=pl.when(in_episode).then(BAD_EPISODE_DEFECT_RATE).otherwise("defect_rate"),
        )
    else:
        batches = batches.with_columns(in_bad_episode=pl.lit(False))
    batches = batches.sort("arrival_at", "shop", "sku_id").with_row_index("batch_id", offset=1)
    return batches.with_columns(pl.col("batch_id").cast(pl.Int64))


def build_keys(cfg: SimConfig, batches: pl.DataFrame) -> pl.DataFrame:
    """Every key row the suppliers send, with its fate flags (defective, void, malformed, dup)."""
    rng = cfg.rng("keys")
    sizes = batches["size"].to_numpy()
    b = np.repeat(np.arange(batches.height), sizes)
    n = len(b)
    defect_rate = batches["defect_rate"].to_numpy()[b]
    defective = rng.uniform(size=n) < defect_rate
    # a fifth of the bad keys are caught when the shop imports them and are voided before sale
    void = defective & (rng.uniform(size=n) < 0.2)
    malformed = rng.uniform(size=n) < cfg.profile.malformed_key
    duplicated = ~malformed & (rng.uniform(size=n) < cfg.profile.duplicate_key_in_batch)
    arrival = batches["arrival_at"].to_numpy()[b]
    secret = random_code_series(rng, n, 16, UPPER_ALNUM)
    card_no = random_code_series(rng, n, 16, DIGITS)
    keys = pl.DataFrame(
        {
            "key_id": np.arange(1, n + 1, dtype=np.int64),
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
        }
    )
    return keys


def allocate(
    cfg: SimConfig, orders: pl.DataFrame, keys: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deliver keys to paid auto-delivery orders FIFO; set delivery times, stock-outs, manual work.

    Returns (orders with ``delivered_at`` and ``waited_for_stock``; keys with ``order_idx``, ``sold_at``).
    """
    rng = cfg.rng("delivery")
    n = orders.height
    latency = np.where(
        rng.uniform(size=n) < 0.03,
        rng.integers(10, 180, n),
        np.clip(np.round(rng.lognormal(np.log(2.0), 0.5, n)), 1, 9),
    ).astype(np.int64)
    orders = orders.with_columns(latency_s=pl.Series(latency))

    usable = keys.filter(~pl.col("is_malformed") & pl.col("voided_at").is_null()).sort(
        "shop", "sku_id", "received_at", "key_id"
    )
    q_shop = usable["shop"].to_numpy()
    q_sku = usable["sku_id"].to_numpy()
    q_arrival = usable["received_at"].to_numpy()
    q_key = usable["key_id"].to_numpy()
    # offset of each (shop, sku) queue in the sorted key array
    q_group = pl.DataFrame({"shop": q_shop, "sku_id": q_sku}).with_row_index("pos")
    offsets = q_group.group_by("shop", "sku_id", maintain_order=True).agg(
        pl.col("pos").first().alias("q_off"), pl.len().alias("q_len")
    )

    wants = (
        orders.filter(pl.col("is_paid") & ~pl.col("lost_callback") & ~pl.col("is_manual"))
        .select("order_idx", "shop", "sku_id", "paid_at", "qty", "latency_s")
        .sort("shop", "sku_id", "paid_at", "order_idx")
        .with_columns(cum=pl.col("qty").cum_sum().over("shop", "sku_id"))
        .join(offsets, on=["shop", "sku_id"], how="left")
        .with_columns(pl.col("q_off").fill_null(0), pl.col("q_len").fill_null(0))
    )
    cum = wants["cum"].to_numpy()
    qty = wants["qty"].to_numpy()
    has_keys = cum <= wants["q_len"].to_numpy()
    last_pos = np.where(has_keys, wants["q_off"].to_numpy() + cum - 1, 0)
    last_arrival = np.where(has_keys, q_arrival[last_pos], np.iinfo(np.int64).max)
    ready = wants["paid_at"].to_numpy() + wants["latency_s"].to_numpy()
    delivered_at = np.maximum(ready, last_arrival)
    delivered = has_keys & (delivered_at < cfg.end_epoch)
    wants = wants.with_columns(
        delivered_at=pl.Series(np.where(delivered, delivered_at, -1)).replace(-1, None),
        key_from=pl.Series(np.where(delivered, wants["q_off"].to_numpy() + cum - qty, -1)),
        waited_for_stock=pl.Series(ready < last_arrival),
    )
    d = wants.filter(pl.col("delivered_at").is_not_null())
    counts = d["qty"].to_numpy()
    starts = d["key_from"].to_numpy()
    pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    sold = pl.DataFrame(
        {
            "key_id": q_key[pos],
            "order_idx": np.repeat(d["order_idx"].to_numpy(), counts),
            "sold_at": np.repeat(d["delivered_at"].to_numpy(), counts),
        }
    )
    keys = keys.join(sold, on="key_id", how="left")

    # manual (直充) orders: staff top up within minutes; a few fail
    manual = (
        orders["is_manual"].to_numpy()
        & orders["is_paid"].to_numpy()
        & ~orders["lost_callback"].to_numpy()
    )
    manual_at = orders["paid_at"].fill_null(0).to_numpy() + rng.integers(90, 1800, n)
    manual_failed = manual & (rng.uniform(size=n) < 0.01)
    manual_done = manual & ~manual_failed & (manual_at < cfg.end_epoch)
    orders = orders.join(
        wants.select("order_idx", "delivered_at", "waited_for_stock"), on="order_idx", how="left"
    ).with_columns(
        delivered_at=pl.when(pl.Series(manual_done))
        .then(pl.Series(manual_at))
        .otherwise(pl.col("delivered_at")),
        delivery_failed=pl.Series(manual_failed),
        waited_for_stock=pl.col("waited_for_stock").fill_null(False),
    )
    return orders, keys
