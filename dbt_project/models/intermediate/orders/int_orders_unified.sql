-- Orders of both shops in one shape: the standard order number, the listing, the amount the buyer
-- was charged after coupons, the channel account it pays into, and what the shop itself recorded.
with

main_orders as (
    select * from {{ ref('stg_shop__orders') }}
),

substation_orders as (
    select * from {{ ref('stg_substation__orders') }}
),

main_pays as (
    select * from {{ ref('stg_shop__pay_methods') }}
),

substation_pays as (
    select * from {{ ref('stg_substation__pay_methods') }}
),

commodities as (
    select * from {{ ref('stg_substation__commodities') }}
),

pay_accounts as (
    select * from {{ ref('pay_method_accounts') }}
),

accounts as (
    select * from {{ ref('channel_accounts') }}
),

pay_methods as (
    select
        shop,
        pay_id,
        pay_code
    from main_pays
    union all
    select
        shop,
        pay_id,
        pay_code
    from substation_pays
),

unioned as (
    select
        shop,
        order_id,
        order_sn as native_order_no,
        goods_id as listing_id,
        quantity,
        unit_price_fen,
        coupon_discount_fen,
        amount_fen,
        is_manual,
        pay_id,
        channel_txn_no,
        order_status,
        is_paid_in_shop,
        created_at,
        created_date,
        cast(null as timestamptz) as shop_paid_at,
        first_seen_paid_at,
        completed_at as shop_completed_at,
        delivered_keys_text,
        buy_ip
    from main_orders
    union all
    select
        substation_orders.shop,
        substation_orders.order_id,
        substation_orders.trade_no as native_order_no,
        substation_orders.commodity_id as listing_id,
        substation_orders.quantity,
        cast(round(substation_orders.amount_fen / substation_orders.quantity) as bigint)
            as unit_price_fen,
        0 as coupon_discount_fen,
        substation_orders.amount_fen,
        coalesce(commodities.is_manual, false) as is_manual,
        substation_orders.pay_id,
        cast(null as varchar) as channel_txn_no,
        substation_orders.order_status,
        substation_orders.is_paid_in_shop,
        substation_orders.created_at,
        substation_orders.created_date,
        substation_orders.paid_at as shop_paid_at,
        substation_orders.paid_at as first_seen_paid_at,
        cast(null as timestamptz) as shop_completed_at,
        substation_orders.delivered_keys_text,
        substation_orders.buy_ip
    from substation_orders
    left join commodities on substation_orders.commodity_id = commodities.commodity_id
),

final as (
    select
        {{ order_no('unioned.shop', 'unioned.native_order_no') }} as order_no,
        unioned.*,
        pay_methods.pay_code,
        pay_accounts.account_key,
        accounts.channel
    from unioned
    left join pay_methods
        on unioned.shop = pay_methods.shop and unioned.pay_id = pay_methods.pay_id
    left join pay_accounts
        on pay_methods.shop = pay_accounts.shop and pay_methods.pay_code = pay_accounts.pay_code
    left join accounts on pay_accounts.account_key = accounts.account_key
)

select * from final
