-- One row per order of either shop (test and broken rows are quarantined at ingestion and never
-- reach here): the standard order number, the buyer (`user_key`), the product (`sku_code`), the
-- payment as shop and channel together know it, delivery, refunds and anomaly flags.
--
-- Incremental by order: a run rebuilds the orders its change set names (macro
-- `fct_orders_changes`: orders whose order, payment, delivered keys, refunds, buyer or SKU changed,
-- and the paid orders not delivered yet).
{%- set upstreams = fct_orders_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['shop', 'order_id'],
        pre_hook="{{ before_build(['shop', 'order_id'],
            fct_orders_logged(),
            fct_orders_changes(), fct_orders_upstreams()) }}",
        post_hook="{{ after_build(['shop', 'order_id'],
            fct_orders_logged(),
            fct_orders_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

orders as not materialized (
    select * from {{ ref('int_orders_unified') }}
    where {{ in_change_set(['shop', 'order_id'], 'select shop, order_id from changed', upstreams) }}
),

payments as (
    select * from {{ ref('int_order_payments') }}
    where {{ in_change_set(['shop', 'order_id'], 'select shop, order_id from changed', upstreams) }}
),

buyers as (
    select * from {{ ref('int_order_buyers') }}
    where {{ in_change_set(['shop', 'order_id'], 'select shop, order_id from changed', upstreams) }}
),

listings as (
    select * from {{ ref('int_listings_mapped') }}
),

keys as (
    select * from {{ ref('int_card_keys_costed') }}
    where {{ in_change_set(['shop', 'order_id'], 'select shop, order_id from changed', upstreams) }}
),

as_of as (
    -- the latest moment the shops' data speaks for: an order paid less than the stock-out wait
    -- before it may still be delivered (of every order, not only those rebuilt)
    select max(created_at) as data_as_of from {{ ref('int_orders_unified') }}
),

delivered_keys as (
    select
        shop,
        order_id,
        count(*) as delivered_keys,
        cast(sum(cost_fen) as bigint) as delivered_cost_fen,
        max(sold_at) as last_key_sold_at,
        arg_min(supplier_code, card_key_id) as supplier_code
    from keys
    where order_id is not null
    group by shop, order_id
),

order_refunds as (
    select * from ({{ fct_orders_refunds() }})
    where {{ in_change_set(['shop', 'order_id'], 'select shop, order_id from changed', upstreams) }}
),

joined as (
    select
        orders.order_no,
        orders.shop,
        orders.order_id,
        orders.native_order_no,
        buyers.user_key,
        orders.listing_id,
        listings.sku_code,
        orders.quantity,
        orders.unit_price_fen,
        orders.coupon_discount_fen,
        orders.amount_fen,
        orders.is_manual,
        orders.channel,
        orders.account_key,
        orders.order_status,
        orders.created_at,
        orders.created_date,
        payments.is_paid,
        payments.is_lost_callback,
        payments.paid_at,
        payments.paid_at_source,
        payments.payment_txn_no,
        payments.channel_amount_fen,
        payments.payment_lines,
        payments.is_duplicate_payment,
        payments.is_amount_mismatch,
        payments.is_missing_in_statement,
        orders.is_paid_in_shop,
        case
            when orders.shop = 'main' and orders.order_status = 'delivered'
                then orders.shop_completed_at
            when orders.shop = 'substation' and not orders.is_manual
                then delivered_keys.last_key_sold_at
        end as delivered_at,
        orders.order_status = 'delivered' as is_delivered,
        coalesce(delivered_keys.delivered_keys, 0) as delivered_keys,
        delivered_keys.delivered_cost_fen,
        delivered_keys.supplier_code,
        coalesce(order_refunds.refunds_succeeded, 0) as refunds_succeeded,
        coalesce(order_refunds.refunded_fen, 0) as refunded_fen,
        order_refunds.first_refund_succeeded_at,
        order_refunds.first_refund_reason,
        as_of.data_as_of
    from orders
    cross join as_of
    left join payments on orders.shop = payments.shop and orders.order_id = payments.order_id
    left join buyers on orders.shop = buyers.shop and orders.order_id = buyers.order_id
    left join listings on orders.shop = listings.shop and orders.listing_id = listings.listing_id
    left join delivered_keys
        on orders.shop = delivered_keys.shop and orders.order_id = delivered_keys.order_id
    left join order_refunds
        on orders.shop = order_refunds.shop and orders.order_id = order_refunds.order_id
),

final as (
    select
        order_no,
        shop,
        order_id,
        native_order_no,
        user_key,
        listing_id,
        sku_code,
        quantity,
        unit_price_fen,
        coupon_discount_fen,
        amount_fen,
        is_manual,
        channel,
        account_key,
        order_status,
        created_at,
        created_date,
        created_date as business_date,
        is_paid,
        paid_at,
        {{ business_date('paid_at') }} as paid_date,
        paid_at_source,
        payment_txn_no,
        channel_amount_fen,
        payment_lines,
        is_paid_in_shop,
        is_lost_callback,
        is_duplicate_payment,
        is_amount_mismatch,
        is_missing_in_statement,
        is_delivered,
        delivered_at,
        case
            when not is_manual and delivered_at is not null
                then cast(epoch(delivered_at) - epoch(paid_at) as bigint)
        end as delivery_seconds,
        delivered_keys,
        delivered_cost_fen,
        supplier_code,
        -- docs/metrics.md#stock-outs: paid, not delivered within 10 minutes because no key was in
        -- stock; an automatic delivery takes seconds, so a longer wait is a wait for stock
        is_paid_in_shop and not is_manual and (
            (delivered_at is null and epoch(data_as_of) - epoch(paid_at) > 600)
            or epoch(delivered_at) - epoch(paid_at) > 600
        ) as is_stockout,
        refunds_succeeded,
        refunded_fen,
        refunds_succeeded > 0 as has_refund,
        first_refund_succeeded_at,
        first_refund_reason,
        {{ this_run() }} as _built_at
    from joined
)

select * from final
