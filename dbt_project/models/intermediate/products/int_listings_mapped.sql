-- One row per shop listing (main-shop goods, substation commodities) with the canonical SKU it
-- sells (product coding standard, PRODUCT_CODING.md); `sku_code` is null when the listing could
-- not be coded, and the listing is then in `int_products_unmapped`.
with

coded as (
    select * from {{ ref('int_product_names_coded') }}
),

categories as (
    select * from {{ ref('product_categories') }}
),

aliases as (
    select * from {{ ref('product_aliases') }}
),

category_keys as (
    select
        {{ normalise_code_text('alias_text') }} as category_key,
        code as category_code
    from aliases
    where alias_kind = 'category'
    union
    select
        {{ normalise_code_text('category_name') }} as category_key,
        category_code
    from categories
),

final as (
    select
        coded.system as shop,
        coded.listing_id,
        coded.source_name as listing_name,
        coded.normalised_name,
        coded.sku_code,
        coded.match_method,
        coalesce(coded.category_code, category_keys.category_code) as category_code,
        category_keys.category_code as listing_category_code,
        coded.source_category_name as listing_category_name,
        coalesce(
            coded.category_code <> category_keys.category_code, false
        ) as has_category_conflict,
        coded.is_manual,
        coded.list_price_fen,
        coded.retail_price_fen,
        case when coded.system = 'substation' then coded.supplier_sku end as commodity_code,
        coded.first_seen_at as listed_at,
        coded.unmapped_reason
    from coded
    left join category_keys
        on {{ normalise_code_text('coded.source_category_name') }} = category_keys.category_key
    where coded.system in ('main', 'substation')
)

select * from final
