-- Every product name the platform meets, one row per source product: main-shop goods, substation
-- commodities and supplier items (one per distinct supplier, supplier SKU and written name), each
-- normalised and split into what precedes the face value and the face value itself (product coding
-- standard, PRODUCT_CODING.md). The coding itself is `int_product_names_coded`.
--
-- Incremental by product (`system`, `product_ref`, `source_name`): a run rebuilds the listings
-- whose row differs from the table's (the shops' goods and commodities are small snapshots,
-- compared whole) and the supplier items of the supplier lines that changed, before and after
-- (macro `product_names_changes`): the supplier lines are the part that grows with history.
{%- set upstreams = product_names_upstreams() %}
{%- set key = ['system', 'product_ref', 'source_name'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['system', 'product_ref', 'source_name'],
        pre_hook="{{ before_build(['system', 'product_ref', 'source_name'],
            ['system', 'product_ref', 'source_name'],
            product_names_changes(), product_names_upstreams()) }}",
        post_hook="{{ after_build(['system', 'product_ref', 'source_name'],
            ['system', 'product_ref', 'source_name'], product_names_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

listings as (
    select {{ product_listing_columns() }}
    from ({{ product_listings() }})
    where {{ in_change_set(key, 'select * from changed', upstreams) }}
),

batch_lines as (
    select * from {{ ref('stg_supplier__card_batch_lines') }}
    where
        {{ in_change_set(["supplier_code || '/' || supplier_sku", 'supplier_product_name'],
            "select product_ref, source_name from changed where system = 'supplier'",
            upstreams) }}
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
        -- a supplier states the face value on every line; the most common one per item (the
        -- smallest of a tie: `mode` keeps the first it meets, so the order makes it one value
        -- whichever lines a run reads)
        mode(face_value_fen order by face_value_fen) as stated_face_value_fen,
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
    select * from listings
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
        regexp_matches(normalised_name, '直充$') as has_direct_marker,
        {{ this_run() }} as _built_at
    from normalised
)

select * from final
