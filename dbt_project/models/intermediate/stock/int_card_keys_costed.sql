-- Every card key the shops imported, with the supplier batch it came from and its unit cost, and
-- the order it was delivered to. The key is the only link from a shop's key back to the
-- supplier's file; the main shop links a sold key to its order only through the order's `info`
-- (the delivered keys, one per line), the substation through `card.order_id`. Keys are compared
-- by their keyed hash (`key_text`; the lake never holds a key): equal keys, equal hashes.
--
-- Incremental by key: a run rebuilds the keys its change set names (macro
-- `card_keys_costed_changes`: keys whose staging row, main-shop delivering order or supplier line
-- may have changed).
{%- set upstreams = card_keys_costed_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='key_id',
        pre_hook="{{ before_build(['shop', 'card_key_id'], ['key_id', 'shop', 'order_id'],
            card_keys_costed_changes(), card_keys_costed_upstreams()) }}",
        post_hook="{{ after_build(['shop', 'card_key_id'], ['key_id', 'shop', 'order_id'],
            card_keys_costed_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

main_keys as (
    select * from {{ ref('stg_shop__card_keys') }}
    where
        {{ in_change_set(['card_key_id'],
            "select card_key_id from changed where shop = 'main'",
            upstreams) }}
),

substation_keys as (
    select * from {{ ref('stg_substation__card_keys') }}
    where
        {{ in_change_set(['card_key_id'],
            "select card_key_id from changed where shop = 'substation'",
            upstreams) }}
),

-- only the lines of the keys rebuilt: the ranking of the versions is the staging view's
supplier_lines as (
    select * from {{ ref('stg_supplier__card_batch_lines') }}
    where
        key_text in (
            select main_keys.key_text from main_keys
            union all
            select substation_keys.key_text from substation_keys
        )
),

main_deliveries as (
    select
        order_id,
        key_text
    from {{ ref('int_main_key_deliveries') }}
    where key_text in (select main_keys.key_text from main_keys)
),

keys as (
    select
        main_keys.shop,
        main_keys.card_key_id,
        main_keys.goods_id as listing_id,
        main_keys.key_text,
        main_keys.key_status,
        main_keys.imported_at,
        main_keys.sold_at,
        main_keys.voided_at,
        main_deliveries.order_id
    from main_keys
    left join main_deliveries
        on main_keys.key_text = main_deliveries.key_text and main_keys.key_status = 'sold'
    union all
    select
        shop,
        card_key_id,
        commodity_id as listing_id,
        key_text,
        key_status,
        imported_at,
        sold_at,
        voided_at,
        case when key_status = 'sold' then order_id end as order_id
    from substation_keys
),

supplier_keys as (
    select *
    from supplier_lines
    qualify row_number() over (partition by key_text order by received_date, supplier_code) = 1
),

final as (
    select
        keys.shop || '-' || keys.card_key_id as key_id,
        keys.shop,
        keys.card_key_id,
        keys.listing_id,
        keys.key_status,
        keys.imported_at,
        keys.sold_at,
        keys.voided_at,
        keys.order_id,
        supplier_keys.supplier_code,
        supplier_keys.batch_no,
        supplier_keys.supplier_sku,
        supplier_keys.supplier_product_name,
        supplier_keys.unit_cost_fen as cost_fen,
        supplier_keys.expires_on,
        supplier_keys.key_text is not null as has_supplier_record,
        supplier_keys.received_date as supplier_received_date,
        {{ this_run() }} as _built_at
    from keys
    left join supplier_keys on keys.key_text = supplier_keys.key_text
)

select * from final
