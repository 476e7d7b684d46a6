-- One row per order: whether and when it was paid, combining what the shop recorded with what the
-- channel's statement says (docs/metrics.md#paid-order and docs/metrics.md#paid_at):
-- - paid when the shop shows a paid status, or when a statement holds a payment for it (a lost
--   callback: the channel took the money, the shop never heard);
-- - `paid_at` is the substation's own `pay_time`; for the main shop (dujiaoka keeps no payment
--   time) the completion time of the order's transaction in the statement, and, until the
--   statement has arrived, the time the order was first seen in a paid status;
-- - the primary payment is the transaction the shop recorded (`trade_no`), else the earliest one;
--   any further payment line of the same order is a duplicate charge.
--
-- Incremental by order: a run rebuilds the orders that changed and those a rebuilt statement line
-- pays (macro `order_payments_changes`).
{%- set upstreams = ['int_orders_unified', 'int_statement_lines'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['shop', 'order_id'],
        pre_hook="{{ before_build(['shop', 'order_id'], ['shop', 'order_id'],
            order_payments_changes(), ['int_orders_unified', 'int_statement_lines']) }}",
        post_hook="{{ after_build(['shop', 'order_id'], ['shop', 'order_id'],
            ['int_orders_unified', 'int_statement_lines']) }}",
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

lines as (
    select * from {{ ref('int_statement_lines') }}
    where line_type = 'payment' and order_id is not null
),

-- only the columns used below: the window sorts every payment line of the lake with what it carries
ranked as (
    select
        lines.shop,
        lines.order_id,
        lines.channel_txn_no,
        lines.completed_at,
        lines.amount_fen,
        lines.fee_fen,
        lines.statement_date,
        lines.match_rule,
        row_number() over (
            partition by lines.shop, lines.order_id
            order by
                (lines.channel_txn_no = orders.channel_txn_no) desc nulls last,
                lines.completed_at,
                lines.channel_txn_no asc
        ) as payment_rank,
        count(*) over (partition by lines.shop, lines.order_id) as payment_lines
    from lines
    inner join orders on lines.shop = orders.shop and lines.order_id = orders.order_id
),

primary_payment as (
    select * from ranked
    where payment_rank = 1
),

final as (
    select
        orders.shop,
        orders.order_id,
        orders.order_no,
        orders.is_paid_in_shop or primary_payment.order_id is not null as is_paid,
        not orders.is_paid_in_shop and primary_payment.order_id is not null as is_lost_callback,
        case
            when orders.shop_paid_at is not null then orders.shop_paid_at
            when primary_payment.completed_at is not null then primary_payment.completed_at
            when orders.is_paid_in_shop then orders.first_seen_paid_at
        end as paid_at,
        case
            when orders.shop_paid_at is not null then 'shop'
            when primary_payment.completed_at is not null then 'statement'
            when orders.is_paid_in_shop then 'shop_status_change'
        end as paid_at_source,
        primary_payment.channel_txn_no as payment_txn_no,
        primary_payment.amount_fen as channel_amount_fen,
        primary_payment.fee_fen as channel_fee_fen,
        primary_payment.statement_date,
        primary_payment.match_rule as statement_match_rule,
        coalesce(primary_payment.payment_lines, 0) as payment_lines,
        coalesce(primary_payment.payment_lines, 0) > 1 as is_duplicate_payment,
        primary_payment.amount_fen is not null
        and primary_payment.amount_fen <> orders.amount_fen as is_amount_mismatch,
        orders.is_paid_in_shop and primary_payment.order_id is null as is_missing_in_statement,
        {{ this_run() }} as _built_at
    from orders
    left join primary_payment
        on orders.shop = primary_payment.shop and orders.order_id = primary_payment.order_id
)

select * from final
