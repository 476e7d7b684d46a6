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
#: what a refund row carries of its order, so the writers never look the order up again
ORDER_COLUMNS = (
    "order_idx",
    "shop",
    "account",
    "channel",
    "paid_at",
    "person_id",
    "order_no",
    "order_no_affix",
    "listing_id",
    "qty",
)


def refunds_of(
    cfg: SimConfig, step: int, delivered: pl.DataFrame, duplicates: pl.DataFrame, first_idx: int
) -> pl.DataFrame:
    """The refunds of the orders delivered in one day's step, numbered from ``first_idx``.

    ``delivered`` are the (non-test) orders delivered in the step, with ``bad_keys``, the
    defective keys they received; ``duplicates`` the step's orders paid twice, whose second charge
    is paid back. A refund may be asked for days after the step (up to 14), so the refunds of a
    step are numbered in the order they were drawn, not in the order they happen.
    """
    rng = cfg.rng(f"refunds/{step}")
    o = delivered
    n = o.height
    base = o["delivered_at"].to_numpy()
    reason = np.full(n, "", dtype="U20")
    amount = np.zeros(n, dtype=np.int64)
    bad_keys = o["bad_keys"].to_numpy()
    inv = (bad_keys > 0) & (rng.uniform(size=n) < 0.85)
    reason[inv] = "invalid_key"
    amt = o["amount_fen"].to_numpy()
    amount[inv] = np.round(amt[inv] * bad_keys[inv] / o["qty"].to_numpy()[inv])
    other = ~inv
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
    refunds = (
        o.select(*ORDER_COLUMNS, "txn_no")
        .with_columns(
            reason=pl.Series(reason),
            amount_fen=pl.Series(amount),
            requested_at=pl.Series(base + delay),
            is_late=pl.Series(late),
            of_duplicate_payment=pl.lit(False),
        )
        .filter(pl.col("reason") != "")
    )

    # the second charge of a duplicate payment is paid back
    dup_delay = rng.integers(3600, 2 * 86400, duplicates.height)
    dup_refunds = duplicates.select(
        *ORDER_COLUMNS,
        pl.col("dup_txn_no").alias("txn_no"),
        reason=pl.lit("duplicate_payment"),
        amount_fen=pl.col("amount_fen") + pl.col("amount_delta_fen"),
        requested_at=pl.col("dup_paid_at") + pl.Series(dup_delay, dtype=pl.Int64),
        is_late=pl.Series(dup_delay > 86400, dtype=pl.Boolean),
        of_duplicate_payment=pl.lit(True),
    )
    refunds = (
        pl.concat([refunds, dup_refunds], how="vertical_relaxed")
        .filter((pl.col("requested_at") < cfg.end_epoch) & (pl.col("amount_fen") > 0))
        .sort("requested_at", "order_idx", "of_duplicate_payment")
    )
    m = refunds.height
    outcome = rng.choice([1, 2, 0], size=m, p=[0.96, 0.02, 0.02])  # 1 success, 2 failed, 0 pending
    succeeded_at = refunds["requested_at"].to_numpy() + rng.integers(30, 3 * 3600, m)
    ok = (outcome == 1) & (succeeded_at < cfg.end_epoch)
    return refunds.with_columns(
        status=pl.Series(np.where((outcome == 1) & ~ok, 0, outcome).astype(np.int64)),
        succeeded_at=pl.Series(np.where(ok, succeeded_at, -1), dtype=pl.Int64).replace(-1, None),
        refund_idx=pl.int_range(pl.len(), dtype=pl.Int64) + first_idx,
    ).with_columns(
        refund_no=pl.concat_str(
            [
                pl.lit("RF"),
                local_time(pl.col("requested_at"), "%Y%m%d"),
                pl.col("refund_idx").cast(pl.Utf8).str.zfill(8),
            ]
        )
    )
