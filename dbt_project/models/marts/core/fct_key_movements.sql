-- The stock ledger (docs/metrics.md#stock-ledger): one row per movement of a card key — received
-- (the
-- shop imported it), delivered (sold to an order) or voided (found invalid before sale) — with the
-- key's unit cost from its supplier batch. Units and value are signed (+ in, − out).
--
-- Incremental by key: a run rebuilds the movements of the keys its change set names (macro
-- `key_movements_changes`: keys that changed, keys delivered to an order that changed, keys whose
-- listing now maps to another SKU).
{%- set upstreams = key_movements_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='key_id',
        pre_hook="{{ before_build(['key_id'], key_movements_logged(),
            key_movements_changes(), key_movements_upstreams()) }}",
        post_hook="{{ after_build(['key_id'], key_movements_logged(),
            key_movements_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

keys as not materialized (
    select * from {{ ref('int_card_keys_costed') }}
    where {{ in_change_set(['key_id'], 'select key_id from changed', upstreams) }}
),

listings as (
    select * from {{ ref('int_listings_mapped') }}
),

orders as (
    select * from {{ ref('int_orders_unified') }}
),

movements as (
    select
        keys.*,
        'received' as movement,
        keys.imported_at as moved_at,
        1 as units
    from keys
    union all
    select
        keys.*,
        'delivered' as movement,
        keys.sold_at as moved_at,
        -1 as units
    from keys
    where keys.sold_at is not null
    union all
    select
        keys.*,
        'voided' as movement,
        keys.voided_at as moved_at,
        -1 as units
    from keys
    where keys.voided_at is not null
),

final as (
    select
        movements.key_id || ':' || movements.movement as movement_id,
        movements.key_id,
        movements.movement,
        movements.moved_at,
        {{ business_date('movements.moved_at') }} as business_date,
        movements.shop,
        movements.listing_id,
        listings.sku_code,
        movements.supplier_code,
        movements.batch_no,
        movements.units,
        movements.cost_fen,
        movements.units * movements.cost_fen as value_fen,
        orders.order_no,
        {{ this_run() }} as _built_at
    from movements
    left join listings
        on movements.shop = listings.shop and movements.listing_id = listings.listing_id
    left join orders
        on
            movements.movement = 'delivered'
            and movements.shop = orders.shop
            and movements.order_id = orders.order_id
)

select * from final
