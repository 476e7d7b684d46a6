-- The product master: one row per canonical SKU (`sku_code`, product coding standard in
-- PRODUCT_CODING.md) that a shop lists or a supplier delivers, with its parts, Chinese names and
-- the listings and supplier items behind it.
with

listings as not materialized (
    select * from {{ ref('int_listings_mapped') }}
),

supplier_items as (
    select * from {{ ref('int_supplier_items_mapped') }}
),

coded as (
    select * from {{ ref('int_product_names_coded') }}
),

categories as (
    select * from {{ ref('product_categories') }}
),

brands as (
    select * from {{ ref('product_brands') }}
),

variants as (
    select * from {{ ref('product_variants') }}
),

skus as (
    select
        sku_code,
        min(category_code) as category_code,
        min(brand_code) as brand_code,
        min(face_value_yuan) as face_value_yuan,
        min(variant) as variant,
        min(brand_name) as derived_brand_name
    from coded
    where sku_code is not null
    group by sku_code
),

main_listings as (
    select
        sku_code,
        list(listing_id order by listing_id) as main_goods_ids,
        min(list_price_fen) as main_price_fen,
        bool_or(is_manual) as is_manual,
        min(listed_at) as first_listed_at
    from listings
    where shop = 'main' and sku_code is not null
    group by sku_code
),

substation_listings as (
    select
        sku_code,
        list(listing_id order by listing_id) as substation_commodity_ids,
        min(list_price_fen) as substation_price_fen,
        bool_or(is_manual) as is_manual,
        min(listed_at) as first_listed_at
    from listings
    where shop = 'substation' and sku_code is not null
    group by sku_code
),

supplied as (
    select
        sku_code,
        list(distinct supplier_code order by supplier_code) as supplier_codes,
        count(distinct supplier_code || '/' || supplier_sku) as supplier_sku_count,
        min(first_received_date) as first_received_date
    from supplier_items
    where sku_code is not null
    group by sku_code
),

final as (
    select
        skus.sku_code,
        skus.category_code,
        categories.category_name,
        categories.category_name_en,
        skus.brand_code,
        coalesce(brands.brand_name, skus.derived_brand_name) as brand_name,
        brands.brand_name_en,
        brands.brand_code is not null as is_registered_brand,
        cast(skus.face_value_yuan as bigint) * 100 as face_value_fen,
        skus.variant,
        variants.variant_name,
        coalesce(brands.brand_name, skus.derived_brand_name)
        || case
            when variants.months is not null then variants.variant_name
            else cast(skus.face_value_yuan as varchar) || '元'
        end as canonical_name,
        coalesce(main_listings.main_goods_ids, []) as main_goods_ids,
        coalesce(substation_listings.substation_commodity_ids, []) as substation_commodity_ids,
        len(coalesce(main_listings.main_goods_ids, [])) as main_listing_count,
        len(coalesce(substation_listings.substation_commodity_ids, [])) as substation_listing_count,
        main_listings.main_price_fen,
        substation_listings.substation_price_fen,
        coalesce(supplied.supplier_codes, []) as supplier_codes,
        coalesce(supplied.supplier_sku_count, 0) as supplier_sku_count,
        coalesce(
            main_listings.is_manual or substation_listings.is_manual,
            main_listings.is_manual,
            substation_listings.is_manual,
            skus.variant = 'DIRECT'
        ) as is_manual,
        least(
            main_listings.first_listed_at, substation_listings.first_listed_at
        ) as first_listed_at,
        supplied.first_received_date
    from skus
    left join categories on skus.category_code = categories.category_code
    left join brands on skus.brand_code = brands.brand_code
    left join variants on skus.variant = variants.variant
    left join main_listings on skus.sku_code = main_listings.sku_code
    left join substation_listings on skus.sku_code = substation_listings.sku_code
    left join supplied on skus.sku_code = supplied.sku_code
)

select * from final
