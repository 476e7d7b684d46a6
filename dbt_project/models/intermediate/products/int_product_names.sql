-- Every product name the platform meets, one row per source product: main-shop goods, substation
-- commodities and supplier items (one per distinct supplier, supplier SKU and written name), each
-- normalised and split into what precedes the face value and the face value itself (product coding
-- standard, PRODUCT_CODING.md). The coding itself is `int_product_names_coded`.
with

goods as (
    select * from {{ ref('stg_shop__goods') }}
),

goods_groups as (
    select * from {{ ref('stg_shop__goods_groups') }}
),

commodities as (
    select * from {{ ref('stg_substation__commodities') }}
),

categories as (
    select * from {{ ref('stg_substation__categories') }}
),

batch_lines as (
    select * from {{ ref('stg_supplier__card_batch_lines') }}
),

main_listings as (
    select
        'main' as system,  -- noqa: RF04
        cast(goods.goods_id as varchar) as product_ref,
        goods.goods_id as listing_id,
        cast(null as varchar) as supplier_code,
        cast(null as varchar) as supplier_sku,
        goods.goods_name as source_name,
        goods_groups.group_name as source_category_name,
        goods.retail_price_fen as stated_face_value_fen,
        goods.price_fen as list_price_fen,
        goods.retail_price_fen,
        goods.is_manual,
        goods.created_at as first_seen_at,
        cast(null as date) as first_seen_date,
        cast(null as date) as last_seen_date,
        cast(null as bigint) as line_count
    from goods
    left join goods_groups on goods.group_id = goods_groups.group_id
),

substation_listings as (
    select
        'substation' as system,  -- noqa: RF04
        cast(commodities.commodity_id as varchar) as product_ref,
        commodities.commodity_id as listing_id,
        cast(null as varchar) as supplier_code,
        commodities.commodity_code as supplier_sku,
        commodities.commodity_name as source_name,
        categories.category_name as source_category_name,
        cast(null as bigint) as stated_face_value_fen,
        commodities.price_fen as list_price_fen,
        cast(null as bigint) as retail_price_fen,
        commodities.is_manual,
        commodities.created_at as first_seen_at,
        cast(null as date) as first_seen_date,
        cast(null as date) as last_seen_date,
        cast(null as bigint) as line_count
    from commodities
    left join categories on commodities.category_id = categories.category_id
),

supplier_items as (
    select
        'supplier' as system,  -- noqa: RF04
        supplier_code || '/' || supplier_sku as product_ref,
        cast(null as bigint) as listing_id,
        supplier_code,
        supplier_sku,
        supplier_product_name as source_name,
        cast(null as varchar) as source_category_name,
        -- a supplier states the face value on every line; the most common one per item
        mode(face_value_fen) as stated_face_value_fen,
        cast(null as bigint) as list_price_fen,
        cast(null as bigint) as retail_price_fen,
        cast(null as boolean) as is_manual,
        cast(null as timestamptz) as first_seen_at,
        min(received_date) as first_seen_date,
        max(received_date) as last_seen_date,
        count(*) as line_count
    from batch_lines
    group by supplier_code, supplier_sku, supplier_product_name
),

unioned as (
    select * from main_listings
    union all
    select * from substation_listings
    union all
    select * from supplier_items
),

normalised as (
    select
        *,
        {{ normalise_product_name('source_name') }} as normalised_name
    from unioned
),

final as (
    select
        *,
        {{ name_before_face('normalised_name') }} as name_before_face,
        {{ name_face_yuan('normalised_name') }} as name_face_yuan,
        regexp_matches(normalised_name, '直充$') as has_direct_marker
    from normalised
)

select * from final
