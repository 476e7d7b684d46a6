"""The KPI marts scored against the simulator's answer key (``_truth/daily_metrics*.parquet``):
every KPI of kpi_sales_daily, kpi_refunds_daily, kpi_repurchase_daily and kpi_inventory_daily
equals the truth for every day — exactly for counts and fen, to 1e-9 for ratios — overall and per
shop.

The buyer-based KPIs (buyers, new buyers, 客单价, repurchase) are scored against what a perfect
resolver can know from the data (``daily_metrics_resolvable``: each order's buyer is the evidence
component of its true person — the identifiers the sources show together). Some people leave no
trace tying their identifiers (a guest order with a QQ number seen nowhere else), and no platform
can count them once; how far that is from the true head count is reported by the identity tests.
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from tests.conftest import truth

pytestmark = pytest.mark.integration

EXACT = {
    "kpi_sales_daily": [
        "created_orders",
        "paid_orders",
        "gmv_fen",
        "buyers",
        "new_buyers",
    ],
    "kpi_refunds_daily": ["paid_orders", "gmv_fen", "refunds_fen_on"],
    "kpi_repurchase_daily": [],
    "kpi_inventory_daily": ["stock_units", "stock_value_fen", "cogs_fen", "stockout_orders"],
}
RATIOS = {
    "kpi_sales_daily": ["conversion_rate", "avg_order_value_fen", "customer_unit_price_fen"],
    "kpi_refunds_daily": ["refund_rate", "refund_amount_rate"],
    "kpi_repurchase_daily": ["repurchase_rate_30d"],
    "kpi_inventory_daily": ["inventory_turnover_30d", "days_of_cover"],
}
#: KPIs that count buyers: scored against the evidence-resolvable truth
BUYER_KPIS = {"buyers", "new_buyers", "customer_unit_price_fen", "repurchase_rate_30d"}
#: each mart's rows for the whole platform and for one shop
WHERE = {
    "kpi_sales_daily": ("shop = 'all'", "shop = '{shop}'"),
    "kpi_repurchase_daily": ("shop = 'all'", "shop = '{shop}'"),
    "kpi_refunds_daily": (
        "breakdown = 'overall'",
        "breakdown = 'shop' and breakdown_value = '{shop}'",
    ),
    "kpi_inventory_daily": ("scope = 'overall'", "scope = 'shop' and shop = '{shop}'"),
}


def _compare(ours: pl.DataFrame, expected: pl.DataFrame, mart: str, label: str) -> list[str]:
    joined = expected.join(ours, on="business_date", how="left", suffix="_ours")
    problems = []
    for row in joined.iter_rows(named=True):
        for col in EXACT[mart]:
            if row[col] != row[f"{col}_ours"] and not (
                row[col] is None and row[f"{col}_ours"] == 0
            ):
                problems.append(
                    f"{label} {row['business_date']} {col}: {row[f'{col}_ours']} ≠ {row[col]}"
                )
        for col in RATIOS[mart]:
            want, got = row[col], row[f"{col}_ours"]
            if want is None or got is None:
                if want is not got and not (want is None and got is None):
                    problems.append(f"{label} {row['business_date']} {col}: {got} ≠ {want}")
            elif not math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{label} {row['business_date']} {col}: {got} ≠ {want}")
    return problems


def _expected(sources, name: str) -> pl.DataFrame:
    """The truth, with the buyer-based KPIs taken from the evidence-resolvable answer key."""
    people = truth(sources, name)
    resolvable = truth(sources, f"{name}_resolvable")
    keys = [c for c in ("shop", "business_date") if c in people.columns]
    return people.drop(*BUYER_KPIS).join(resolvable.select(*keys, *BUYER_KPIS), on=keys, how="left")


@pytest.mark.parametrize("mart", sorted(EXACT))
def test_kpis_equal_the_truth_every_day(modelled_shop, mart):
    overall, per_shop = WHERE[mart]
    problems = _compare(
        modelled_shop.query(f"select * from marts.{mart} where {overall}"),
        _expected(modelled_shop.sources, "daily_metrics"),
        mart,
        "overall",
    )
    by_shop = _expected(modelled_shop.sources, "daily_metrics_by_shop")
    for shop in ("main", "substation"):
        problems += _compare(
            modelled_shop.query(f"select * from marts.{mart} where {per_shop.format(shop=shop)}"),
            by_shop.filter(pl.col("shop") == shop).drop("shop"),
            mart,
            shop,
        )
    assert not problems, "\n".join(problems[:40])


def test_every_refund_counts_once_in_each_breakdown(modelled_shop):
    """A breakdown splits the day's refunds: its rows add up to the overall row, refunds of manual
    top-ups (no supplier), unmapped listings and unknown channels included (they count under
    `none`, `unmapped`, `unknown`)."""
    sums = modelled_shop.query(
        """
        select business_date, breakdown, sum(refunds_on) as refunds_on,
            sum(refunds_fen_on) as refunds_fen_on
        from marts.kpi_refunds_daily
        group by all
        """
    )
    overall = sums.filter(pl.col("breakdown") == "overall").drop("breakdown")
    joined = sums.filter(pl.col("breakdown") != "overall").join(
        overall, on="business_date", suffix="_overall"
    )
    assert joined.height > 0 and overall["refunds_on"].sum() > 0
    off = joined.filter(
        (pl.col("refunds_on") != pl.col("refunds_on_overall"))
        | (pl.col("refunds_fen_on") != pl.col("refunds_fen_on_overall"))
    )
    assert off.is_empty(), off
    # the shop has refunds of orders the bug would have dropped: manual top-ups have no supplier
    assert (
        modelled_shop.query(
            "select count(*) as n from marts.fct_refunds "
            "where refund_status = 'succeeded' and supplier_code is null"
        )["n"][0]
        > 0
    )
