-- The stock ledger (metrics.md, Inventory): one row per movement of a card key — received (the
-- shop imported it), delivered (sold to an order) or voided (found invalid before sale) — with the
-- key's unit cost from its supplier batch. Units and value are signed (+ in, − out).
with

keys as (
    select * from {{ ref('int_card_keys_costed') }}
),

listings as (
    select * from {{ ref('int_listings_mapped') }}
),

orders as (
    select * from {{ ref('int_orders_unified') }}
),

movements as (
    select
        key_id,
        'received' as movement,
        imported_at as moved_at,
        1 as units
    from keys
    union all
    select
        key_id,
        'delivered' as movement,
        sold_at as moved_at,
        -1 as units
    from keys
    where sold_at is not null
    union all
    select
        key_id,
        'voided' as movement,
        voided_at as moved_at,
        -1 as units
    from keys
    where voided_at is not null
),

final as (
    select
        movements.key_id || ':' || movements.movement as movement_id,
        movements.key_id,
        movements.movement,
        movements.moved_at,
        {{ business_date('movements.moved_at') }} as business_date,
        keys.shop,
        keys.listing_id,
        listings.sku_code,
        keys.supplier_code,
        keys.batch_no,
        movements.units,
        keys.cost_fen,
        movements.units * keys.cost_fen as value_fen,
        orders.order_no
    from movements
    inner join keys on movements.key_id = keys.key_id
    left join listings on keys.shop = listings.shop and keys.listing_id = listings.listing_id
    left join orders
        on
            movements.movement = 'delivered'
            and keys.shop = orders.shop
            and keys.order_id = orders.order_id
)

select * from final
