-- One row per payment: every payment line of the channel statements (matched to its order where
-- one exists), plus the shop's paid orders that no statement shows (yet). `is_primary` marks the
-- transaction the order counts as paid by; a further line of the same order is a duplicate charge.
with

lines as (
    select * from {{ ref('int_statement_lines') }}
    where line_type = 'payment'
),

orders as not materialized (
    select * from {{ ref('fct_orders') }}
),

statement_payments as (
    select
        lines.channel || ':' || lines.channel_txn_no as payment_id,
        lines.channel,
        lines.account_key,
        lines.shop,
        lines.channel_txn_no,
        lines.merchant_order_no,
        lines.order_no,
        orders.order_no is not null as has_shop_order,
        lines.match_rule,
        lines.completed_at as paid_at,
        lines.completed_date as paid_date,
        lines.amount_fen,
        orders.amount_fen as shop_amount_fen,
        lines.fee_fen,
        lines.statement_date,
        lines.completed_date as business_date,
        'statement' as recorded_by,
        orders.payment_txn_no is not null
        and lines.channel_txn_no = orders.payment_txn_no as is_primary
    from lines
    left join orders on lines.order_no = orders.order_no
),

shop_only as (
    select
        orders.shop || ':' || orders.order_no as payment_id,
        orders.channel,
        orders.account_key,
        orders.shop,
        cast(null as varchar) as channel_txn_no,
        cast(null as varchar) as merchant_order_no,
        orders.order_no,
        true as has_shop_order,
        cast(null as varchar) as match_rule,
        orders.paid_at,
        orders.paid_date,
        cast(null as bigint) as amount_fen,
        orders.amount_fen as shop_amount_fen,
        cast(null as bigint) as fee_fen,
        cast(null as date) as statement_date,
        orders.paid_date as business_date,
        'shop' as recorded_by,
        true as is_primary
    from orders
    where orders.is_paid and orders.payment_txn_no is null
),

final as (
    select * from statement_payments
    union all
    select * from shop_only
)

select * from final
