-- Refunds of both shops in one shape. The main shop records its refunds (with a reason); the
-- substation keeps none, so its refunds are the refund lines of its channel statements. A
-- substation refund of a transaction other than the order's primary payment pays back a duplicate
-- charge; any other has no recorded reason (`unknown`).
with

shop_refunds as (
    select * from {{ ref('stg_shop__refunds') }}
),

orders as (
    select * from {{ ref('int_orders_unified') }}
),

payments as (
    select * from {{ ref('int_order_payments') }}
),

lines as (
    select * from {{ ref('int_statement_lines') }}
),

main_refunds as (
    select
        shop_refunds.refund_no,
        'shop' as recorded_by,
        orders.shop,
        orders.order_id,
        orders.order_no,
        shop_refunds.amount_fen,
        shop_refunds.reason_code,
        shop_refunds.reason_text,
        shop_refunds.refund_status,
        shop_refunds.requested_at,
        shop_refunds.succeeded_at,
        cast(null as varchar) as refunded_txn_no
    from shop_refunds
    inner join orders
        on
            orders.shop = 'main'
            and {{ order_no("'main'", 'shop_refunds.order_sn') }} = orders.order_no
),

substation_refunds as (
    select
        coalesce(lines.merchant_refund_no, lines.channel_refund_no, lines.channel_txn_no)
            as refund_no,
        'statement' as recorded_by,
        lines.shop,
        lines.order_id,
        lines.order_no,
        -lines.amount_fen as amount_fen,
        case
            when
                payments.payment_txn_no is not null
                and lines.channel_txn_no <> payments.payment_txn_no then 'duplicate_payment'
            else 'unknown'
        end as reason_code,
        cast(null as varchar) as reason_text,
        'succeeded' as refund_status,
        lines.created_at as requested_at,
        lines.completed_at as succeeded_at,
        lines.channel_txn_no as refunded_txn_no
    from lines
    left join payments on lines.shop = payments.shop and lines.order_id = payments.order_id
    where lines.line_type = 'refund' and lines.shop = 'substation' and lines.order_id is not null
),

final as (
    select * from main_refunds
    union all
    select * from substation_refunds
)

select * from final
