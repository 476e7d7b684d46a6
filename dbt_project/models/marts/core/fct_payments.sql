-- One row per payment: every payment line of the channel statements (matched to its order where
-- one exists), plus the shop's paid orders that no statement shows (yet). `is_primary` marks the
-- transaction the order counts as paid by; a further line of the same order is a duplicate charge.
--
-- Incremental by payment: a run rebuilds the payments its change set names (macro
-- `fct_payments_changes`: payment lines that changed, and the payments of orders that changed).
{%- set upstreams = fct_payments_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='payment_id',
        pre_hook="{{ before_build(['payment_id'], fct_payments_logged(),
            fct_payments_changes(), fct_payments_upstreams()) }}",
        post_hook="{{ after_build(['payment_id'], fct_payments_logged(),
            fct_payments_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

lines as not materialized (
    select * from {{ ref('int_statement_lines') }}
    where
        line_type = 'payment'
        and {{ in_change_set(["channel || ':' || channel_txn_no"],
            'select payment_id from changed', upstreams) }}
),

-- the orders the rebuilt payments name
orders as not materialized (
    select * from {{ ref('fct_orders') }}
    where
        {{ in_change_set(['order_no'],
            "select lines.order_no from lines where lines.order_no is not null
            union all
            select shop_order_no from changed where shop_order_no is not null", upstreams) }}
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
    where
        orders.is_paid
        and orders.payment_txn_no is null
        and {{ in_change_set(["orders.shop || ':' || orders.order_no"],
            'select payment_id from changed', upstreams) }}
),

unioned as (
    select * from statement_payments
    union all
    select * from shop_only
),

final as (
    select
        *,
        {{ this_run() }} as _built_at
    from unioned
)

select * from final
