-- Every source product that did not map to a `sku_code`: shop listings and supplier items, with the
-- reason. These never reach a KPI as a product; the data-quality marts count them.
with

listings as (
    select * from {{ ref('int_listings_mapped') }}
),

supplier_items as (
    select * from {{ ref('int_supplier_items_mapped') }}
),

unmapped_listings as (
    select
        shop as system,  -- noqa: RF04
        case shop when 'main' then 'main.goods' else 'substation.commodity' end as source_table,
        cast(listing_id as varchar) as product_ref,
        listing_id,
        cast(null as varchar) as supplier_code,
        cast(null as varchar) as supplier_sku,
        listing_name as product_name,
        normalised_name,
        unmapped_reason as reason
    from listings
    where sku_code is null
),

unmapped_supplier_items as (
    select
        'supplier' as system,  -- noqa: RF04
        'supplier.' || supplier_code as source_table,
        supplier_code || '/' || supplier_sku as product_ref,
        cast(null as bigint) as listing_id,
        supplier_code,
        supplier_sku,
        supplier_product_name as product_name,
        normalised_name,
        unmapped_reason as reason
    from supplier_items
    where sku_code is null
),

final as (
    select * from unmapped_listings
    union all
    select * from unmapped_supplier_items
)

select * from final
