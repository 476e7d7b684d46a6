"""The day-level KPIs of docs/metrics.md, computed from the simulated events a day at a time.

``DailyMetrics`` is fed the orders of each business day in order (as ``simulate`` reads them back)
and keeps only what the next days need: the paid orders created late on the day before, the first
paid day of every buyer seen so far, and the (buyer, day) pairs of the trailing 30 days. Refunds
(a few per hundred orders) are held whole; the stock figures come from per-day key events.
The choices where docs/metrics.md leaves room are in ``simulator.truth``'s docstring.
"""

from __future__ import annotations

import polars as pl

from simulator.config import SimConfig

STOCKOUT_WAIT_S = 600
#: what a day's orders must hold for the metrics (``buyer`` names the buyer's id column)
ORDER_COLUMNS = (
    "order_idx",
    "shop",
    "is_test",
    "is_paid",
    "paid_at",
    "delivered_at",
    "is_manual",
    "waited_for_stock",
    "amount_fen",
)
#: the additive counts, zero on a day without any
COUNTS = (
    "created_orders",
    "converted",
    "paid_orders",
    "gmv_fen",
    "buyers",
    "new_buyers",
    "refunded_orders",
    "refund_of_paid_fen",
    "stockout_orders",
    "refunds_fen_on",
    "auto_paid",
    "within_30s",
)
SHOPS = ("main", "substation")


def _day(col: str, cfg: SimConfig) -> pl.Expr:
    return ((pl.col(col) - cfg.start_epoch) // 86400).cast(pl.Int64)


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


def inventory_events(cfg: SimConfig, keys: pl.DataFrame) -> pl.DataFrame:
    """Per (day, shop): the stock units and value a day's keys add and take, and the COGS.

    ``keys`` are some keys in their final state; the events of every key sum up per day, so the
    keys can come a day's arrivals at a time.
    """
    valid = keys.filter(~pl.col("is_malformed"))
    return (
        pl.concat(
            [
                valid.select(
                    "shop",
                    day=_day("received_at", cfg),
                    units=pl.lit(1),
                    value="cost_fen",
                    cogs=pl.lit(0),
                ),
                valid.filter(pl.col("sold_at").is_not_null()).select(
                    "shop",
                    day=_day("sold_at", cfg),
                    units=pl.lit(-1),
                    value=-pl.col("cost_fen"),
                    cogs="cost_fen",
                ),
                valid.filter(pl.col("voided_at").is_not_null()).select(
                    "shop",
                    day=_day("voided_at", cfg),
                    units=pl.lit(-1),
                    value=-pl.col("cost_fen"),
                    cogs=pl.lit(0),
                ),
            ],
            how="vertical_relaxed",
        )
        .with_columns(pl.col("day").clip(lower_bound=-1))
        .group_by("day", "shop")
        .agg(pl.col("units").sum(), pl.col("value").sum(), pl.col("cogs").sum())
    )


def inventory_daily(cfg: SimConfig, events: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Stock units/value at each day end, COGS, 30-day turnover and days of cover.

    ``events`` are ``inventory_events`` (of every key, in any number of parts).
    """
    grid = pl.DataFrame({"day": list(range(-1, cfg.days))}, schema={"day": pl.Int64})
    if by:
        grid = grid.join(pl.DataFrame({"shop": list(SHOPS)}), how="cross")
    per_day = (
        grid.join(
            events.group_by("day", *by).agg(
                pl.col("units").sum(), pl.col("value").sum(), pl.col("cogs").sum()
            ),
            on=["day", *by],
            how="left",
        )
        .fill_null(0)
        .sort(*by, "day")
    )
    over = by or None
    cum = per_day.with_columns(
        stock_units=pl.col("units").cum_sum().over(over) if over else pl.col("units").cum_sum(),
        stock_value_fen=pl.col("value").cum_sum().over(over) if over else pl.col("value").cum_sum(),
        cogs_fen="cogs",
    ).filter(pl.col("day") >= 0)
    roll = {"window_size": 30, "min_samples": 1}
    sum30 = pl.col("cogs_fen").rolling_sum(**roll)
    mean30 = pl.col("stock_value_fen").rolling_mean(**roll)
    if over:
        sum30, mean30 = sum30.over(over), mean30.over(over)
    return cum.with_columns(
        inventory_turnover_30d=pl.when(mean30 > 0).then(sum30 / mean30),
        days_of_cover=pl.when(sum30 > 0).then(pl.col("stock_value_fen") / (sum30 / 30)),
    ).select(
        "day",
        *by,
        "stock_units",
        "stock_value_fen",
        "cogs_fen",
        "inventory_turnover_30d",
        "days_of_cover",
    )


class DailyMetrics:
    """Every day-level KPI, overall or per shop, with buyers counted by the column ``buyer``."""

    def __init__(
        self,
        cfg: SimConfig,
        refunds: pl.DataFrame,
        by_shop: bool = False,
        buyer: str = "person_id",
    ) -> None:
        self.cfg = cfg
        self.by = ["shop"] if by_shop else []
        self.buyer = buyer
        ok = refunds.filter(pl.col("status") == 1)
        self.refunded = ok.group_by("order_idx").agg(refund_fen=pl.col("amount_fen").sum())
        g = ["day", *self.by]
        self.refunds_on = (
            ok.with_columns(day=_day("succeeded_at", cfg))
            .group_by(g)
            .agg(refunds_fen_on=pl.col("amount_fen").sum())
        )
        self.first_seen = pl.DataFrame(schema={"buyer": pl.Int64, "first_day": pl.Int64})
        #: per (shop?, buyer) with a purchase in the last 30 days: their last two distinct days
        self.recent = pl.DataFrame(
            schema={
                **dict.fromkeys(self.by, pl.Utf8),
                "buyer": pl.Int64,
                "last": pl.Int64,
                "prev": pl.Int64,
            }
        )
        self.pending: pl.DataFrame | None = None  # paid orders of the next day, created before it
        self.created: list[pl.DataFrame] = []
        self.sales: list[pl.DataFrame] = []
        self.repurchase: list[pl.DataFrame] = []
        self.next_day = 0

    def add(self, orders: pl.DataFrame) -> None:
        """The orders created on the next business day (``ORDER_COLUMNS`` and the buyer column)."""
        d = self.next_day
        self.next_day += 1
        g = ["day", *self.by]
        o = orders.filter(~pl.col("is_test")).select(
            *ORDER_COLUMNS, buyer=pl.col(self.buyer).cast(pl.Int64)
        )
        self.created.append(
            o.with_columns(day=pl.lit(d, dtype=pl.Int64))
            .group_by(g)
            .agg(created_orders=pl.len(), converted=pl.col("is_paid").sum())
        )
        paid = o.filter(pl.col("is_paid")).with_columns(day=_day("paid_at", self.cfg))
        today = paid.filter(pl.col("day") == d)
        if self.pending is not None:
            today = pl.concat([self.pending, today])
        self.pending = paid.filter(pl.col("day") > d)
        self._paid_day(d, today)

    def _paid_day(self, d: int, paid: pl.DataFrame) -> None:
        g = ["day", *self.by]
        new = (
            paid.select("buyer")
            .unique()
            .join(self.first_seen, on="buyer", how="anti")
            .with_columns(first_day=pl.lit(d, dtype=pl.Int64))
        )
        self.first_seen = pl.concat([self.first_seen, new])
        paid = paid.join(self.refunded, on="order_idx", how="left").join(
            new.select("buyer", "first_day"), on="buyer", how="left"
        )
        auto = pl.col("is_manual").not_()
        delivery_s = pl.col("delivered_at") - pl.col("paid_at")
        delivered_auto = auto & pl.col("delivered_at").is_not_null()
        self.sales.append(
            paid.group_by(g).agg(
                paid_orders=pl.len(),
                gmv_fen=pl.col("amount_fen").sum(),
                buyers=pl.col("buyer").n_unique(),
                new_buyers=pl.col("buyer").filter(pl.col("first_day") == pl.col("day")).n_unique(),
                refunded_orders=pl.col("refund_fen").is_not_null().sum(),
                refund_of_paid_fen=pl.col("refund_fen").sum(),
                stockout_orders=(
                    pl.col("waited_for_stock")
                    & (pl.col("delivered_at").is_null() | (delivery_s > STOCKOUT_WAIT_S))
                ).sum(),
                auto_paid=auto.sum(),
                within_30s=(delivered_auto & (delivery_s <= 30)).sum(),
                delivery_p50_s=delivery_s.filter(delivered_auto).quantile(
                    0.5, interpolation="linear"
                ),
                delivery_p95_s=delivery_s.filter(delivered_auto).quantile(
                    0.95, interpolation="linear"
                ),
            )
        )
        # repurchase: buyers in [d-29, d] with paid orders on ≥ 2 distinct days, that is, whose
        # two latest purchase days are both in the window (a running state, not 30 days of rows)
        today = paid.select(*self.by, "buyer").unique().with_columns(today=pl.lit(True))
        first = d - 29
        self.recent = (
            self.recent.join(today, on=[*self.by, "buyer"], how="full", coalesce=True)
            .select(
                *self.by,
                "buyer",
                last=pl.when("today").then(pl.lit(d, dtype=pl.Int64)).otherwise("last"),
                prev=pl.when("today").then("last").otherwise("prev"),
            )
            .filter(pl.col("last") >= first)
        )
        if self.recent.height:
            rate = (pl.col("prev") >= first).fill_null(False).mean().alias("repurchase_rate_30d")
            rates = self.recent.group_by(self.by).agg(rate) if self.by else self.recent.select(rate)
            self.repurchase.append(rates.with_columns(day=pl.lit(d, dtype=pl.Int64)))

    def finish(self, inventory: pl.DataFrame) -> pl.DataFrame:
        """The figures of every day; ``inventory`` are the ``inventory_events`` of every key."""
        cfg = self.cfg
        if self.pending is not None and not self.pending.is_empty():
            raise ValueError("orders paid after the horizon: the days fed do not cover it")
        g = ["day", *self.by]
        days = pl.DataFrame({"day": list(range(cfg.days))}, schema={"day": pl.Int64})
        if self.by:
            days = days.join(pl.DataFrame({"shop": list(SHOPS)}), how="cross")
        out = days
        for part in (
            pl.concat(self.created),
            pl.concat(self.sales),
            self.refunds_on,
            pl.concat(self.repurchase) if self.repurchase else None,
            inventory_daily(cfg, inventory, self.by),
        ):
            if part is not None:
                out = out.join(part, on=g, how="left")
        if "repurchase_rate_30d" not in out.columns:
            out = out.with_columns(repurchase_rate_30d=pl.lit(None, dtype=pl.Float64))
        out = out.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNTS])
        return out.select(
            *self.by,
            business_date=pl.lit(cfg.start) + pl.duration(days=pl.col("day")),
            created_orders="created_orders",
            paid_orders="paid_orders",
            gmv_fen="gmv_fen",
            conversion_rate=_ratio("converted", "created_orders"),
            avg_order_value_fen=_ratio("gmv_fen", "paid_orders"),
            customer_unit_price_fen=_ratio("gmv_fen", "buyers"),
            buyers="buyers",
            new_buyers="new_buyers",
            refund_rate=_ratio("refunded_orders", "paid_orders"),
            refund_amount_rate=_ratio("refund_of_paid_fen", "gmv_fen"),
            refunds_fen_on="refunds_fen_on",
            repurchase_rate_30d="repurchase_rate_30d",
            stockout_orders="stockout_orders",
            delivery_p50_s="delivery_p50_s",
            delivery_p95_s="delivery_p95_s",
            delivered_within_30s_rate=_ratio("within_30s", "auto_paid"),
            stock_units="stock_units",
            stock_value_fen="stock_value_fen",
            cogs_fen="cogs_fen",
            inventory_turnover_30d="inventory_turnover_30d",
            days_of_cover="days_of_cover",
        ).sort("business_date", *self.by)
