"""Orders and payments: who bought what, when, for how much, and how the money reached the channel.

Everything is drawn per day as whole columns (a day is the unit of seasonality); no Python loop
runs per order. The result is the *true* event table: injected channel anomalies are flags on it,
and the writers decide from those flags what each source system shows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from simulator.config import CHANNEL_ACCOUNTS, CST_OFFSET_S, SimConfig
from simulator.text import DIGITS, UPPER_ALNUM, random_codes

# orders by local hour: quiet nights, a lunch bump, an evening peak (game time)
HOUR_WEIGHTS = np.array(
    [
        2.2,
        1.4,
        0.8,
        0.5,
        0.4,
        0.4,
        0.6,
        1.0,
        1.8,
        2.6,
        3.2,
        3.6,
        4.2,
        4.0,
        3.6,
        3.5,
        3.6,
        3.8,
        4.2,
        5.0,
        6.0,
        6.6,
        6.2,
        4.2,
    ]
)
WEEKDAY_FACTOR = np.array([0.93, 0.94, 0.96, 0.99, 1.05, 1.10, 1.03])  # Mon..Sun
PROMO_DATES = {(11, 11), (12, 12), (6, 18), (1, 1), (10, 1), (2, 14), (5, 20)}

# main shop pays (dujiaoka pay_check) → channel account; substation pay codes → account
MAIN_PAYS = [
    (1, "zfbf2f", "alipay_main", 0.47),
    (2, "wescan", "wechat_main", 0.38),
    (3, "alipay", "alipay_main", 0.08),
    (4, "wxpay", "wechat_main", 0.07),
]
SUB_PAYS = [(1, "alipay", "alipay_substation", 0.55), (2, "wxpay", "wechat_substation", 0.45)]


def day_factor(day: dt.date) -> float:
    promo = 1.6 if (day.month, day.day) in PROMO_DATES else 1.0
    return float(WEEKDAY_FACTOR[day.weekday()]) * promo


def orders_on(cfg: SimConfig, index: int) -> int:
    return max(1, round(cfg.orders_per_day * day_factor(cfg.day(index))))


def _times_of_day(rng: np.random.Generator, n: int, day_start: int) -> np.ndarray:
    hours = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return day_start + hours * 3600 + rng.integers(0, 3600, n)


def unique_codes(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    codes = random_codes(rng, n, length, UPPER_ALNUM)
    while True:  # collisions are astronomically rare at 33^16; redraw the few that happen
        _, first = np.unique(codes, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            return codes
        codes[dup] = random_codes(rng, int(dup.sum()), length, UPPER_ALNUM)


def substation_trade_no(rng: np.random.Generator, created_at: np.ndarray) -> np.ndarray:
    """acg-faka ``Str::generateTradeNo``: ``mt_rand(100,999) . date('ymdHis') . mt_rand(100,999)``."""
    stamp = _local_strftime(created_at, "%y%m%d%H%M%S")
    head = rng.integers(100, 1000, len(created_at))
    tail = rng.integers(100, 1000, len(created_at))
    out = np.char.add(np.char.add(head.astype(str), stamp), tail.astype(str))
    while True:
        _, first = np.unique(out, return_index=True)
        dup = np.ones(len(out), dtype=bool)
        dup[first] = False
        if not dup.any():
            return out
        k = int(dup.sum())
        out[dup] = np.char.add(
            np.char.add(rng.integers(100, 1000, k).astype(str), stamp[dup]),
            rng.integers(100, 1000, k).astype(str),
        )


def channel_txn_no(
    rng: np.random.Generator, channel: np.ndarray, paid_at: np.ndarray
) -> np.ndarray:
    """Alipay 支付宝交易号 ``yyyymmdd22…`` (28 digits), WeChat 微信订单号 ``4200…`` (28 digits)."""
    n = len(paid_at)
    ymd = _local_strftime(paid_at, "%Y%m%d")
    body = random_codes(rng, n, 16, DIGITS)
    alipay = np.char.add(np.char.add(ymd, "2200"), body)
    # 4200 + 6 random + yyyymmdd + 10 random: 16 random digits, as many as Alipay's
    wechat = np.char.add(
        np.char.add(np.char.add("4200", _slice(body, 10, 16)), ymd), _slice(body, 0, 10)
    )
    return np.where(channel == "alipay", alipay, wechat)


class OrderDraws:
    """Draws one business day of orders at a time; what a day needs of the catalogue and people is
    prepared once.

    Each day draws from its own stream (``orders/<day>``), so no day's draws depend on another's.
    """

    def __init__(
        self, cfg: SimConfig, catalog: dict[str, pl.DataFrame], people: pl.DataFrame
    ) -> None:
        self.cfg = cfg
        skus = catalog["skus"]
        self.popularity = skus["popularity"].to_numpy()
        self.launch = skus["launch_day"].to_numpy()
        goods = catalog["goods"]
        comms = catalog["commodities"]
        self.listing = {
            "main": (goods["sku_id"].to_numpy(), goods["goods_id"].to_numpy()),
            "substation": (comms["sku_id"].to_numpy(), comms["commodity_id"].to_numpy()),
        }
        person_order = np.argsort(people["join_day"].to_numpy(), kind="stable")
        self.join_sorted = people["join_day"].to_numpy()[person_order]
        self.activity_sorted = people["activity"].to_numpy()[person_order]
        self.person_ids_sorted = people["person_id"].to_numpy()[person_order]
        self.prices = (
            goods.select("goods_id", pl.col("actual_price_fen").alias("p_main")),
            comms.select("commodity_id", pl.col("price_fen").alias("p_sub")),
            skus.select("sku_id", "is_manual", "category"),
        )

    def day(self, d: int, first_idx: int) -> pl.DataFrame:
        """The orders created on day ``d``, numbered from ``first_idx`` in creation order."""
        cfg = self.cfg
        rng = cfg.rng(f"orders/{d}")
        n = orders_on(cfg, d)
        n_main = int(rng.binomial(n, cfg.main_shop_share))
        day_start = cfg.start_epoch + d * 86400
        eligible = int(np.searchsorted(self.join_sorted, d, side="right"))
        w = self.activity_sorted[:eligible]
        parts = []
        for shop, k in (("main", n_main), ("substation", n - n_main)):
            if k == 0:
                continue
            sku_ids, listing_ids = self.listing[shop]
            sw = self.popularity[sku_ids - 1] * (self.launch[sku_ids - 1] <= d)
            pick = rng.choice(len(sku_ids), size=k, p=sw / sw.sum())
            buyer = self.person_ids_sorted[rng.choice(eligible, size=k, p=w / w.sum())]
            parts.append(
                pl.DataFrame(
                    {
                        "shop": np.full(k, shop),
                        "day": np.full(k, d, dtype=np.int64),
                        "created_at": _times_of_day(rng, k, day_start),
                        "sku_id": sku_ids[pick],
                        "listing_id": listing_ids[pick],
                        "person_id": buyer,
                    }
                )
            )
        orders = pl.concat(parts).sort(["created_at", "shop", "sku_id", "person_id"])
        main_price, sub_price, sku_kind = self.prices
        orders = (
            orders.join(main_price, left_on="listing_id", right_on="goods_id", how="left")
            .join(sub_price, left_on="listing_id", right_on="commodity_id", how="left")
            .join(sku_kind, on="sku_id", how="left")
        )
        return _priced_and_paid(cfg, rng, orders, first_idx)


def _priced_and_paid(
    cfg: SimConfig, rng: np.random.Generator, orders: pl.DataFrame, first_idx: int
) -> pl.DataFrame:
    """Prices, payments, order numbers and the injected channel anomalies of a day's orders."""
    n = orders.height

    # prices: the listing's price at the time, times quantity, less a coupon now and then
    unit = np.where(
        orders["shop"].to_numpy() == "main",
        orders["p_main"].fill_null(0).to_numpy(),
        orders["p_sub"].fill_null(0).to_numpy(),
    )
    qty = rng.choice([1, 2, 3, 5, 10], size=n, p=[0.86, 0.08, 0.03, 0.02, 0.01])
    qty = np.where(orders["is_manual"].to_numpy(), 1, qty)
    gross = unit * qty
    has_coupon = (rng.uniform(size=n) < 0.03) & (orders["shop"].to_numpy() == "main")
    coupon_value = rng.choice([100, 200, 500], size=n)
    coupon_fen = np.where(has_coupon, np.minimum(coupon_value, gross - 1), 0)
    coupon_id = np.where(
        has_coupon,
        (coupon_value // 100 == 1) * 1 + (coupon_value == 200) * 2 + (coupon_value == 500) * 3,
        0,
    )
    amount = gross - coupon_fen

    # payment: 20-30 % are never paid; the rest pay within seconds to a few minutes
    hour = ((orders["created_at"].to_numpy() + CST_OFFSET_S) // 3600) % 24
    p_pay = 0.76 - 0.06 * ((hour >= 1) & (hour <= 6))
    is_paid = rng.uniform(size=n) < p_pay
    delay = np.clip(np.round(rng.lognormal(np.log(25), 0.9, n)), 3, 290).astype(np.int64)
    paid_at = orders["created_at"].to_numpy() + delay
    is_paid &= paid_at < cfg.end_epoch
    shop_arr = orders["shop"].to_numpy()
    pay_id = np.where(
        shop_arr == "main",
        rng.choice([p[0] for p in MAIN_PAYS], size=n, p=[p[3] for p in MAIN_PAYS]),
        rng.choice([p[0] for p in SUB_PAYS], size=n, p=[p[3] for p in SUB_PAYS]),
    )
    acct = np.where(
        shop_arr == "main",
        np.array([p[2] for p in MAIN_PAYS])[np.clip(pay_id - 1, 0, 3)],
        np.array([p[2] for p in SUB_PAYS])[np.clip(pay_id - 1, 0, 1)],
    )
    channel = np.where(np.char.startswith(acct, "alipay"), "alipay", "wechat")

    main_mask = shop_arr == "main"
    order_no = np.empty(n, dtype="U19")
    order_no[main_mask] = unique_codes(rng, int(main_mask.sum()), 16)
    order_no[~main_mask] = substation_trade_no(rng, orders["created_at"].to_numpy()[~main_mask])
    txn = channel_txn_no(rng, channel, paid_at)

    mess = cfg.profile
    u = lambda: rng.uniform(size=n)  # noqa: E731 - one fresh column of uniforms per mess kind
    is_test = u() < mess.test_order
    amount = np.where(is_test, 1, amount)  # a 0.01 yuan order placed by the shop's own staff
    lost_callback = is_paid & (u() < mess.lost_callback)
    dup_payment = is_paid & ~lost_callback & ~is_test & (u() < mess.duplicate_payment)
    mismatch = is_paid & ~is_test & (u() < mess.amount_mismatch)
    delta = rng.choice([-100, -1, 1, 100], size=n)
    delta = np.where(mismatch, np.where(amount + delta <= 0, 1, delta), 0)
    missing_line = is_paid & ~lost_callback & (u() < mess.missing_statement_line)
    affix_pick = u() < mess.order_no_affix
    acct_affixes = {a.key: a.affixes for a in CHANNEL_ACCOUNTS}
    affix_idx = rng.integers(0, 3, n)
    affix = _affixes_vectorised(acct, affix_idx, acct_affixes)
    affix = np.where(affix_pick & is_paid, affix, "")
    local_sec = (paid_at + CST_OFFSET_S) % 86400
    pay_day = (paid_at - cfg.start_epoch) // 86400
    boundary = is_paid & (local_sec >= 86400 - 60) & (pay_day + 1 < cfg.days)
    shifted = boundary & (u() < mess.day_boundary)
    dup_delay = rng.integers(2, 90, n)
    dup_txn = channel_txn_no(rng, channel, paid_at + dup_delay)

    return orders.drop("p_main", "p_sub").with_columns(
        order_idx=pl.Series(np.arange(first_idx, first_idx + n, dtype=np.int64)),
        order_no=pl.Series(order_no),
        qty=pl.Series(qty.astype(np.int64)),
        unit_price_fen=pl.Series(unit.astype(np.int64)),
        coupon_id=pl.Series(coupon_id.astype(np.int64)),
        coupon_fen=pl.Series(coupon_fen.astype(np.int64)),
        amount_fen=pl.Series(amount.astype(np.int64)),
        is_paid=pl.Series(is_paid),
        paid_at=pl.Series(np.where(is_paid, paid_at, -1)).replace(-1, None),
        pay_id=pl.Series(pay_id.astype(np.int64)),
        account=pl.Series(acct),
        channel=pl.Series(channel),
        txn_no=pl.Series(np.where(is_paid, txn, "")),
        lost_callback=pl.Series(lost_callback),
        duplicate_payment=pl.Series(dup_payment),
        dup_txn_no=pl.Series(np.where(dup_payment, dup_txn, "")),
        dup_paid_at=pl.Series(np.where(dup_payment, paid_at + dup_delay, -1)).replace(-1, None),
        amount_delta_fen=pl.Series(delta.astype(np.int64)),
        missing_in_statement=pl.Series(missing_line),
        order_no_affix=pl.Series(affix),
        statement_day_shift=pl.Series(shifted.astype(np.int64)),
        ip=pl.Series(_ips(rng, n)),
        is_test=pl.Series(is_test),
    )


def _slice(codes: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Characters ``start:stop`` of fixed-width strings, without a Python loop."""
    width = codes.dtype.itemsize // 4
    chars = codes.view("U1").reshape(len(codes), width)[:, start:stop]
    return np.ascontiguousarray(chars).view(f"U{stop - start}").ravel()


def _local_strftime(epoch_s: np.ndarray, fmt: str) -> np.ndarray:
    local = pl.from_epoch(pl.Series(epoch_s + CST_OFFSET_S), time_unit="s")
    return local.dt.strftime(fmt).to_numpy().astype(str)


def _affixes_vectorised(acct: np.ndarray, idx: np.ndarray, table: dict) -> np.ndarray:
    out = np.empty(len(acct), dtype="U8")
    for key, affixes in table.items():
        m = acct == key
        out[m] = np.array(affixes)[idx[m] % len(affixes)]
    return out


def _ips(rng: np.random.Generator, n: int) -> np.ndarray:
    octets = [
        rng.integers(lo, hi, n).astype(str) for lo, hi in ((36, 223), (0, 256), (0, 256), (1, 255))
    ]
    out = octets[0]
    for o in octets[1:]:
        out = np.char.add(np.char.add(out, "."), o)
    return out
