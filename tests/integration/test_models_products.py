"""Product coding (dbt_project/PRODUCT_CODING.md) scored against the simulator's answer key.

Every shop listing and supplier item is coded to a ``sku_code``; the answer key says which true SKU
each one is. Registered brands must get exactly the simulator's code (the simulator follows the
platform's standard); long-tail game titles get a code derived from their name, so for them the test
asks that category, face value and variant are the standard's and that codes and true SKUs pair one
to one.
"""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from tests.conftest import truth

pytestmark = pytest.mark.integration


def _true_listings(shop) -> pl.DataFrame:
    return (
        truth(shop.sources, "products")
        .filter(pl.col("system").is_in(["main.goods", "substation.commodity"]))
        .select(
            shop=pl.when(pl.col("system") == "main.goods")
            .then(pl.lit("main"))
            .otherwise(pl.lit("substation")),
            listing_id=pl.col("product_ref").cast(pl.Int64),
            sku_id="sku_id",
            true_code="sku_code",
        )
    )


def _true_supplier_items(shop) -> pl.DataFrame:
    return (
        truth(shop.sources, "products")
        .filter(pl.col("system").str.starts_with("supplier."))
        .select(
            supplier_code=pl.col("system").str.strip_prefix("supplier."),
            supplier_sku="product_ref",
            supplier_product_name="name",
            sku_id="sku_id",
            true_code="sku_code",
        )
    )


@pytest.fixture(scope="module")
def coded(modelled_shop) -> dict[str, pl.DataFrame]:
    """Our listings and supplier items beside their true SKU, each with ``is_correct``."""
    listings = _true_listings(modelled_shop).join(
        modelled_shop.query("select * from intermediate.int_listings_mapped"),
        on=["shop", "listing_id"],
        how="left",
    )
    items = _true_supplier_items(modelled_shop).join(
        modelled_shop.query("select * from intermediate.int_supplier_items_mapped"),
        on=["supplier_code", "supplier_sku", "supplier_product_name"],
        how="left",
    )
    registered = set(
        modelled_shop.query("select brand_code from seeds.product_brands")["brand_code"]
    )
    pairs = pl.concat(
        [listings.select("sku_code", "sku_id"), items.select("sku_code", "sku_id")]
    ).drop_nulls()
    # a code is one-to-one when it names one true SKU and that SKU has no other code
    ids_per_code = pairs.group_by("sku_code").agg(n_ids=pl.col("sku_id").n_unique())
    codes_per_id = pairs.group_by("sku_id").agg(n_codes=pl.col("sku_code").n_unique())

    def score(frame: pl.DataFrame) -> pl.DataFrame:
        ours, theirs = pl.col("sku_code").str.split("-"), pl.col("true_code").str.split("-")
        same_parts = (
            (ours.list.get(0, null_on_oob=True) == theirs.list.get(0))
            & (ours.list.get(2, null_on_oob=True) == theirs.list.get(2))
            & (ours.list.get(3, null_on_oob=True) == theirs.list.get(3))
        )
        true_brand = theirs.list.get(1)
        return (
            frame.join(ids_per_code, on="sku_code", how="left")
            .join(codes_per_id, on="sku_id", how="left")
            .with_columns(
                is_registered=true_brand.is_in(list(registered)),
                is_correct=pl.when(true_brand.is_in(list(registered)))
                .then(pl.col("sku_code") == pl.col("true_code"))
                .otherwise(same_parts & (pl.col("n_ids") == 1) & (pl.col("n_codes") == 1))
                .fill_null(False),
            )
        )

    return {"listings": score(listings), "items": score(items)}


def test_every_listing_and_supplier_item_is_coded_or_listed_as_unmapped(modelled_shop, coded):
    listings, items = coded["listings"], coded["items"]
    assert listings["shop"].is_not_null().all() and listings.height > 0
    # every true listing and supplier item has a row (none dropped on the way)
    assert listings["normalised_name"].is_not_null().all()
    assert items["normalised_name"].is_not_null().all()
    unmapped = modelled_shop.query("select * from intermediate.int_products_unmapped")
    missing_listings = listings.filter(pl.col("sku_code").is_null()).join(
        unmapped.select(shop="system", listing_id="listing_id"),
        on=["shop", "listing_id"],
        how="anti",
    )
    missing_items = items.filter(pl.col("sku_code").is_null()).join(
        unmapped.select("supplier_code", "supplier_sku", supplier_product_name="product_name"),
        on=["supplier_code", "supplier_sku", "supplier_product_name"],
        how="anti",
    )
    assert missing_listings.is_empty(), missing_listings
    assert missing_items.is_empty(), missing_items
    assert unmapped["reason"].is_not_null().all()
    # and nothing is listed as unmapped that did map
    total = modelled_shop.query(
        "select (select count(*) from intermediate.int_listings_mapped where sku_code is null)"
        " + (select count(*) from intermediate.int_supplier_items_mapped where sku_code is null) as n"
    )["n"][0]
    assert unmapped.height == total


def test_order_lines_of_both_shops_map_to_their_true_sku(modelled_shop, coded):
    orders = truth(modelled_shop.sources, "orders").filter(~pl.col("is_test"))
    lines = orders.join(
        coded["listings"].select("shop", "listing_id", "is_correct"),
        on=["shop", "listing_id"],
        how="left",
    )
    assert set(lines["shop"].unique()) == {"main", "substation"}
    for shop, part in lines.group_by("shop"):
        rate = part["is_correct"].fill_null(False).mean()
        assert rate >= 0.99, (shop, rate)
    assert lines["is_correct"].fill_null(False).mean() >= 0.99


def test_supplier_items_map_to_their_true_sku(coded):
    items = coded["items"]
    assert items.height > 0
    assert items["is_correct"].mean() >= 0.99, items.filter(~pl.col("is_correct"))
    wrong_but_coded = items.filter(pl.col("sku_code").is_not_null() & ~pl.col("is_correct"))
    assert wrong_but_coded.height <= 0.005 * items.height, wrong_but_coded


def test_registered_brands_get_exactly_the_standard_code(coded):
    both = pl.concat(
        [
            coded["listings"].select("sku_code", "true_code", "is_registered"),
            coded["items"].select("sku_code", "true_code", "is_registered"),
        ]
    ).filter(pl.col("is_registered") & pl.col("sku_code").is_not_null())
    assert both.height > 0
    assert (both["sku_code"] == both["true_code"]).all(), both.filter(
        pl.col("sku_code") != pl.col("true_code")
    )


def test_long_tail_brand_codes_follow_the_documented_derivation(modelled_shop):
    long_tail = modelled_shop.query(
        "select brand_code, brand_name, category_code from marts.dim_products"
        " where not is_registered_brand"
    ).unique()
    assert long_tail.height > 0
    for row in long_tail.iter_rows(named=True):
        digest = hashlib.md5(row["brand_name"].encode()).hexdigest()[:8].upper()
        assert row["brand_code"] == row["category_code"][0] + digest, row


def test_dim_products_covers_every_coded_listing_and_item(modelled_shop):
    dim = modelled_shop.query("select * from marts.dim_products")
    assert dim["sku_code"].is_unique().all()
    coded_codes = modelled_shop.query(
        "select sku_code from intermediate.int_listings_mapped where sku_code is not null"
        " union select sku_code from intermediate.int_supplier_items_mapped"
        " where sku_code is not null"
    )
    assert set(coded_codes["sku_code"]) == set(dim["sku_code"])
    listed = modelled_shop.query(
        "select shop, count(*) as n from intermediate.int_listings_mapped"
        " where sku_code is not null group by shop"
    )
    n = dict(listed.iter_rows())
    assert dim["main_listing_count"].sum() == n.get("main", 0)
    assert dim["substation_listing_count"].sum() == n.get("substation", 0)
    # the standard's parts are in the code
    parts = dim.select(
        ok=pl.col("sku_code")
        == pl.concat_str(
            [
                "category_code",
                "brand_code",
                (pl.col("face_value_fen") // 100).cast(pl.Utf8).str.zfill(4),
                "variant",
            ],
            separator="-",
        )
    )
    assert parts["ok"].all()
    assert dim["canonical_name"].is_not_null().all() and dim["category_name"].is_not_null().all()


def test_dim_suppliers_counts_agree_with_the_items(modelled_shop):
    sup = modelled_shop.query("select * from marts.dim_suppliers")
    items = modelled_shop.query(
        "select supplier_code, count(*) as n, count(sku_code) as mapped"
        " from intermediate.int_supplier_items_mapped group by supplier_code"
    )
    joined = items.join(sup, on="supplier_code", how="left")
    assert (joined["item_count"] == joined["n"]).all()
    assert (joined["items_mapped"] == joined["mapped"]).all()
    assert (sup["items_mapped"] + sup["items_unmapped"] == sup["item_count"]).all()
    true_suppliers = truth(modelled_shop.sources, "suppliers")
    names = dict(sup.select("supplier_code", "supplier_name").iter_rows())
    for code, name in true_suppliers.select("supplier_code", "supplier_name").iter_rows():
        if code in names:
            assert names[code] == name
    assert sup["file_kind"].is_in(["csv", "xlsx"]).all()
