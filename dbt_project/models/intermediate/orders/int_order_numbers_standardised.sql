-- The order-number standard as a lookup: every order number any system uses (the shops' own
-- numbers, the merchant order numbers of the statements with their integration affixes, the
-- main shop's refund records) → the standard `order_no` and the shop order it names.
with

orders as not materialized (
    select * from {{ ref('int_orders_unified') }}
),

lines as (
    select * from {{ ref('int_statement_lines') }}
),

shop_refunds as (
    select * from {{ ref('stg_shop__refunds') }}
),

-- `union all`: each part is distinct already and the parts never share a `source_system`, so a
-- `union` would hash every row of the three for duplicates that cannot exist
numbers as (
    select
        shop || '.orders' as source_system,
        native_order_no as source_order_no,
        order_no,
        shop,
        order_id,
        'native' as match_rule
    from orders
    union all
    select distinct
        account_key as source_system,
        merchant_order_no as source_order_no,
        order_no,
        shop,
        order_id,
        match_rule
    from lines
    union all
    select distinct
        'main.refunds' as source_system,
        shop_refunds.order_sn as source_order_no,
        orders.order_no,
        orders.shop,
        orders.order_id,
        'native' as match_rule
    from shop_refunds
    left join orders
        on
            orders.shop = 'main'
            and {{ order_no("'main'", 'shop_refunds.order_sn') }} = orders.order_no
),

final as (
    select * from numbers
)

select * from final
