"""Refunds: invalid keys, buyers' regret, wrong products and duplicate payments.

A delivered defective key is what most refunds are about (卡密无效), so a supplier's bad batches
show up as a refund spike on its SKUs. Refunds may succeed days later (up to 14), which changes the
refund rate of their payment day after the fact.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.text import local_time

REASONS = {
    "invalid_key": "卡密无效",
    "buyer_regret": "买家不想要了",
    "wrong_product": "拍错商品",
    "duplicate_payment": "重复支付",
}
MAX_REFUND_DELAY_S = 14 * 86400


def build_refunds(cfg: SimConfig, orders: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    rng = cfg.rng("refunds")
    defective = (
        keys.filter(pl.col("order_idx").is_not_null() & pl.col("is_defective"))
        .group_by("order_idx")
        .agg(pl.len().alias("bad_keys"))
    )
    o = orders.join(defective, on="order_idx", how="left").with_columns(
        pl.col("bad_keys").fill_null(0)
    )
    n = o.height
    delivered = o["delivered_at"].is_not_null().to_numpy()
    base = o["delivered_at"].fill_null(0).to_numpy()
    reason = np.full(n, "", dtype="U20")
    amount = np.zeros(n, dtype=np.int64)
    inv = delivered & (o["bad_keys"].to_numpy() > 0) & (rng.uniform(size=n) < 0.85)
    reason[inv] = "invalid_key"
    amt = o["amount_fen"].to_numpy()
    amount[inv] = np.round(amt[inv] * o["bad_keys"].to_numpy()[inv] / o["qty"].to_numpy()[inv])
    other = delivered & ~inv
    r = rng.uniform(size=n)
    regret = other & (r < 0.003)
    wrong = other & (r >= 0.003) & (r < 0.005)
    reason[regret] = "buyer_regret"
    reason[wrong] = "wrong_product"
    amount[regret | wrong] = amt[regret | wrong]

    # when the buyer asks: hours for most, up to 14 days for the late ones
    late = rng.uniform(size=n) < cfg.profile.late_refund
    delay = np.where(
        late,
        rng.integers(86400, MAX_REFUND_DELAY_S - 7200, n),
        np.clip(np.round(rng.lognormal(np.log(3 * 3600), 1.0, n)), 600, 20 * 3600),
    ).astype(np.int64)
    requested = base + delay
    refunds = (
        o.select("order_idx", "shop", "account", "channel", "txn_no", "paid_at")
        .with_columns(
            reason=pl.Series(reason),
            amount_fen=pl.Series(amount),
            requested_at=pl.Series(requested),
            is_late=pl.Series(late),
            of_duplicate_payment=pl.lit(False),
        )
        .filter(pl.col("reason") != "")
    )

    # the second charge of a duplicate payment is paid back
    dup = orders.filter(pl.col("duplicate_payment")).select(
        "order_idx",
        "shop",
        "account",
        "channel",
        pl.col("dup_txn_no").alias("txn_no"),
        "paid_at",
        "dup_paid_at",
        "amount_fen",
        "amount_delta_fen",
    )
    dup_delay = rng.integers(3600, 2 * 86400, dup.height)
    dup_refunds = dup.select(
        "order_idx",
        "shop",
        "account",
        "channel",
        "txn_no",
        "paid_at",
        reason=pl.lit("duplicate_payment"),
        amount_fen=pl.col("amount_fen") + pl.col("amount_delta_fen"),
        requested_at=pl.col("dup_paid_at") + pl.Series(dup_delay),
        is_late=pl.Series(dup_delay > 86400),
        of_duplicate_payment=pl.lit(True),
    )
    refunds = (
        pl.concat([refunds, dup_refunds])
        .filter((pl.col("requested_at") < cfg.end_epoch) & (pl.col("amount_fen") > 0))
        .sort("requested_at", "order_idx", "of_duplicate_payment")
    )
    m = refunds.height
    outcome = rng.choice([1, 2, 0], size=m, p=[0.96, 0.02, 0.02])  # 1 success, 2 failed, 0 pending
    succeeded_at = refunds["requested_at"].to_numpy() + rng.integers(30, 3 * 3600, m)
    ok = (outcome == 1) & (succeeded_at < cfg.end_epoch)
    return refunds.with_columns(
        status=pl.Series(np.where((outcome == 1) & ~ok, 0, outcome).astype(np.int64)),
        succeeded_at=pl.Series(np.where(ok, succeeded_at, -1)).replace(-1, None),
        refund_idx=pl.int_range(pl.len(), dtype=pl.Int64),
    ).with_columns(
        refund_no=pl.concat_str(
            [
                pl.lit("RF"),
                local_time(pl.col("requested_at"), "%Y%m%d"),
                pl.col("refund_idx").cast(pl.Utf8).str.zfill(8),
            ]
        )
    )
