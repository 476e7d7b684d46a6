-- Orders of both shops in one shape: the standard order number, the listing, the amount the buyer
-- was charged after coupons, the channel account it pays into, and what the shop itself recorded.
--
-- Incremental by order: a run rebuilds the orders its change set names (macro
-- `orders_unified_changes`: orders whose staging row changed, or whose payment method or product
-- now maps differently).
{%- set upstreams = ['stg_shop__orders', 'stg_substation__orders'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['shop', 'order_id'],
        pre_hook="{{ before_build(['shop', 'order_id'], ['shop', 'order_id', 'native_order_no', 'order_no'],
            orders_unified_changes(), ['stg_shop__orders', 'stg_substation__orders']) }}",
        post_hook="{{ after_build(['shop', 'order_id'], ['shop', 'order_id', 'native_order_no', 'order_no'],
            ['stg_shop__orders', 'stg_substation__orders']) }}",
        on_schema_change='fail',
    )
}}
with

main_orders as (
    select * from {{ ref('stg_shop__orders') }}
),

substation_orders as (
    select * from {{ ref('stg_substation__orders') }}
),

commodities as (
    select * from {{ ref('stg_substation__commodities') }}
),

pay_accounts as (
    select * from {{ ref('int_order_pay_accounts') }}
),

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

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
    where
        {{ in_change_set(['order_id'],
            "select order_id from changed where shop = 'main'", upstreams) }}
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
    where
        {{ in_change_set(['substation_orders.order_id'],
            "select order_id from changed where shop = 'substation'", upstreams) }}
),

final as (
    select
        {{ order_no('unioned.shop', 'unioned.native_order_no') }} as order_no,
        unioned.*,
        pay_accounts.pay_code,
        pay_accounts.account_key,
        pay_accounts.channel,
        {{ this_run() }} as _built_at
    from unioned
    left join pay_accounts
        on unioned.shop = pay_accounts.shop and unioned.pay_id = pay_accounts.pay_id
)

select * from final
