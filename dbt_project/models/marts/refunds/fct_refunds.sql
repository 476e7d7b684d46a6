-- One row per refund of either shop: the main shop's refund records, and the substation's refunds
-- as its channel statements show them (it keeps no records of its own). With the order's payment
-- day (the refund-rate cohort), product, supplier of the delivered key and channel.
--
-- Incremental by order: a run rebuilds the refunds of the orders its change set names (macro
-- `fct_refunds_changes`: orders fct_orders rebuilt, and orders whose refunds now differ).
{%- set upstreams = fct_refunds_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_no',
        pre_hook="{{ before_build(['order_no'], fct_refunds_logged(),
            fct_refunds_changes(), fct_refunds_upstreams()) }}",
        post_hook="{{ after_build(['order_no'], fct_refunds_logged(),
            fct_refunds_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

refunds as (
    select * from {{ ref('int_refunds_unified') }}
    where {{ in_change_set(['order_no'], 'select order_no from changed', upstreams) }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where {{ in_change_set(['order_no'], 'select order_no from changed', upstreams) }}
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
        end as requested_after_delivery_s,
        {{ this_run() }} as _built_at
    from refunds
    inner join orders on refunds.order_no = orders.order_no
)

select * from final
