-- One row per refund of either shop: the main shop's refund records, and the substation's refunds
-- as its channel statements show them (it keeps no records of its own). With the order's payment
-- day (the refund-rate cohort), product, supplier of the delivered key and channel.
with

refunds as (
    select * from {{ ref('int_refunds_unified') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

final as (
    select
        refunds.refund_no,
        refunds.order_no,
        refunds.shop,
        refunds.recorded_by,
        refunds.amount_fen,
        refunds.reason_code,
        refunds.reason_text,
        refunds.refund_status,
        refunds.requested_at,
        refunds.succeeded_at,
        {{ business_date('refunds.succeeded_at') }} as succeeded_date,
        {{ business_date('refunds.requested_at') }} as business_date,
        refunds.refunded_txn_no,
        orders.user_key,
        orders.sku_code,
        orders.supplier_code,
        orders.channel,
        orders.account_key,
        orders.paid_at,
        orders.paid_date,
        orders.delivered_at,
        case
            when orders.delivered_at is not null
                then epoch(refunds.requested_at) - epoch(orders.delivered_at)
        end as requested_after_delivery_s
    from refunds
    inner join orders on refunds.order_no = orders.order_no
)

select * from final
