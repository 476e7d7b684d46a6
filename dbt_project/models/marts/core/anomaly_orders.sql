-- Anomaly orders (docs/metrics.md#anomaly-orders): one row per order and anomaly, with a reason
-- code.
-- - `undelivered_10m`: paid (the shop knows it) but not delivered 10 minutes after payment;
-- - `lost_callback`: the channel shows the payment, the shop still shows the order unpaid;
-- - `duplicate_payment`: the channel charged the order more than once;
-- - `amount_mismatch`: the channel's amount differs from the shop's;
-- - `missing_in_statement`: the shop shows a paid order no statement contains;
-- - `missing_in_shop`: a statement payment whose order number matches no shop order.
--
-- Incremental by order number: a run rebuilds the anomalies of the orders and orphan payments its
-- change set names (macro `anomaly_orders_changes`: orders fct_orders rebuilt, and the order
-- numbers of the payments fct_payments rebuilt, before and after).
{%- set upstreams = anomaly_orders_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_no',
        pre_hook="{{ before_build(['order_no'], ['order_no', 'business_date'],
            anomaly_orders_changes(), anomaly_orders_upstreams()) }}",
        post_hook="{{ after_build(['order_no'], ['order_no', 'business_date'],
            anomaly_orders_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

orders as (
    select * from {{ ref('fct_orders') }}
    where {{ in_change_set(['order_no'], 'select order_no from changed', upstreams) }}
),

payments as (
    select * from {{ ref('fct_payments') }}
    where
        recorded_by = 'statement'
        and not has_shop_order
        and {{ in_change_set([orphan_payment_key()], 'select order_no from changed', upstreams) }}
),

flags as (
    unpivot (
        select
            order_no,
            shop,
            paid_at,
            paid_date,
            created_date,
            amount_fen,
            channel_amount_fen,
            channel,
            account_key,
            user_key,
            sku_code,
            payment_lines,
            delivered_at,
            is_stockout as undelivered_10m,
            is_lost_callback as lost_callback,
            is_duplicate_payment as duplicate_payment,
            is_amount_mismatch as amount_mismatch,
            is_missing_in_statement as missing_in_statement
        from orders
        where is_paid
    )
    on undelivered_10m, lost_callback, duplicate_payment, amount_mismatch, missing_in_statement
    into name reason_code value is_flagged
),

order_anomalies as (
    select
        order_no,
        shop,
        reason_code,
        coalesce(paid_date, created_date) as business_date,
        paid_at,
        amount_fen,
        channel_amount_fen,
        channel,
        account_key,
        user_key,
        sku_code,
        case reason_code
            when 'undelivered_10m'
                then
                    case
                        when delivered_at is null then '付款后未发货 (paid, not delivered)'
                        else
                            '付款后 ' || cast(epoch(delivered_at) - epoch(paid_at) as bigint)
                            || ' 秒才发货 (delivered after the wait for stock)'
                    end
            when 'lost_callback' then '渠道已收款, 店铺显示未支付 (channel paid, shop unpaid)'
            when 'duplicate_payment' then '重复扣款 ' || payment_lines || ' 笔 (charged more than once)'
            when 'amount_mismatch'
                then
                    '渠道金额 ' || channel_amount_fen || ' 分 ≠ 订单金额 '
                    || amount_fen || ' 分 (amounts differ)'
            when 'missing_in_statement' then '对账单无此笔 (not in any statement)'
        end as detail
    from flags
    where is_flagged
),

orphan_payments as (
    select
        {{ orphan_payment_key() }} as order_no,
        shop,
        'missing_in_shop' as reason_code,
        paid_date as business_date,
        paid_at,
        cast(null as bigint) as amount_fen,
        amount_fen as channel_amount_fen,
        channel,
        account_key,
        cast(null as varchar) as user_key,
        cast(null as varchar) as sku_code,
        '对账单有收款, 店铺无此订单: ' || merchant_order_no || ' (statement payment, no shop order)'
            as detail
    from payments
),

unioned as (
    select * from order_anomalies
    union all
    select * from orphan_payments
),

final as (
    select
        *,
        {{ this_run() }} as _built_at
    from unioned
)

select * from final
