-- Refund KPIs per payment day (docs/metrics.md#refunds: a cohort by payment day, so a refund that
-- lands days later changes its payment day's figures on the next run), overall and broken down by
-- shop, sku, category, supplier (of the delivered key), payment channel and refund reason.
-- `breakdown` names the dimension and `breakdown_value` its value ('all' for the overall row).
-- For the reason breakdown the denominators are the day's paid orders and GMV as a whole: a
-- reason is a property of a refund, not of an order.
--
-- Incremental by business day: a run rebuilds the days its change set names (macro
-- `kpi_refund_days_changes`: the payment days of orders whose counted figures changed and the
-- days their refunds succeeded on, the days of refunds that changed, before and after; a new
-- day). A day is rebuilt from the orders paid on it and the refunds that succeeded on it or
-- refund an order paid on it.
{%- set upstreams = ['fct_orders', 'fct_refunds'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        pre_hook="{{ before_build(['business_date'], ['business_date'],
            kpi_refund_days_changes(), ['fct_orders', 'fct_refunds']) }}",
        post_hook="{{ after_build(['business_date'], ['business_date'],
            ['fct_orders', 'fct_refunds']) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

-- the refunds of the days rebuilt: those that succeeded on one, and those of orders paid on one
refunds as (
    select * from {{ ref('fct_refunds') }}
    where
        {{ in_change_set(['succeeded_date'], 'select business_date from changed', upstreams) }}
        or {{ in_change_set(['paid_date'], 'select business_date from changed', upstreams) }}
),

-- the orders paid on the days rebuilt, and the orders of those refunds (for their breakdowns;
-- a cohort of a day not rebuilt is left out with the day, below)
orders as (
    select * from {{ ref('fct_orders') }}
    where
        {{ in_change_set(['paid_date'], 'select business_date from changed', upstreams) }}
        or {{ in_change_set(['order_no'], 'select refunds.order_no from refunds', upstreams) }}
),

products as (
    select * from {{ ref('dim_products') }}
),

days as not materialized (
    select * from {{ ref('int_business_days') }}
    where
        {{ in_change_set(['business_date'], 'select business_date from changed', upstreams) }}
),

paid_orders as (
    select
        orders.order_no,
        orders.paid_date,
        orders.amount_fen,
        orders.has_refund,
        orders.refunded_fen,
        orders.shop,
        coalesce(orders.sku_code, 'unmapped') as sku_code,
        coalesce(products.category_code, 'unmapped') as category_code,
        coalesce(orders.supplier_code, 'none') as supplier_code,
        coalesce(orders.channel, 'unknown') as channel
    from orders
    left join products on orders.sku_code = products.sku_code
    where orders.is_paid
),

order_dims as (
    -- one row per paid order and dimension it can be broken down by
    unpivot (
        select
            *,
            'all' as overall
        from paid_orders
    )
    on overall, shop, sku_code, category_code, supplier_code, channel
    into name breakdown value breakdown_value
),

cohort as (
    select
        paid_date as business_date,
        breakdown,
        breakdown_value,
        count(*) as paid_orders,
        cast(sum(amount_fen) as bigint) as gmv_fen,
        count(*) filter (where has_refund) as refunded_orders,
        cast(sum(refunded_fen) as bigint) as refund_of_paid_fen
    from order_dims
    group by all
),

-- the order's breakdown values come from `paid_orders`, coalesced (`unmapped`, `none`, `unknown`):
-- `fct_refunds` carries the same columns uncoalesced, and a second column of the same name would
-- leave a refund of a manual top-up (no supplier) or an unmapped listing out of its breakdown row
succeeded as (
    select
        refunds.* exclude (paid_date, sku_code, supplier_code, channel),  -- noqa: RF02
        paid_orders.paid_date,
        paid_orders.shop as order_shop,
        paid_orders.sku_code,
        paid_orders.category_code,
        paid_orders.supplier_code,
        paid_orders.channel
    from refunds
    inner join paid_orders on refunds.order_no = paid_orders.order_no
    where refunds.refund_status = 'succeeded'
),

refund_dims as (
    unpivot (
        select
            refund_no,
            order_no,
            paid_date,
            succeeded_date,
            amount_fen,
            'all' as overall,
            order_shop as shop,
            sku_code,
            category_code,
            supplier_code,
            channel,
            reason_code as reason
        from succeeded
    )
    on overall, shop, sku_code, category_code, supplier_code, channel, reason
    into name breakdown value breakdown_value
),

by_reason as (
    -- the reason breakdown of the payment-day cohort: orders with a refund of that reason
    select
        paid_date as business_date,
        breakdown,
        breakdown_value,
        count(distinct order_no) as refunded_orders,
        cast(sum(amount_fen) as bigint) as refund_of_paid_fen
    from refund_dims
    where breakdown = 'reason'
    group by all
),

refunds_on as (
    select
        succeeded_date as business_date,
        breakdown,
        breakdown_value,
        count(*) as refunds_on,
        cast(sum(amount_fen) as bigint) as refunds_fen_on
    from refund_dims
    group by all
),

overall as (
    select * from cohort
    where breakdown = 'overall'
),

keys as (
    select
        business_date,
        breakdown,
        breakdown_value
    from cohort
    union
    select
        business_date,
        breakdown,
        breakdown_value
    from by_reason
    union
    select
        business_date,
        breakdown,
        breakdown_value
    from refunds_on
),

combined as (
    select
        keys.business_date,
        replace(keys.breakdown, '_code', '') as breakdown,
        keys.breakdown_value,
        case
            when keys.breakdown = 'reason' then overall.paid_orders else cohort.paid_orders
        end as paid_orders,
        case
            when keys.breakdown = 'reason' then overall.gmv_fen else cohort.gmv_fen
        end as gmv_fen,
        coalesce(by_reason.refunded_orders, cohort.refunded_orders, 0) as refunded_orders,
        coalesce(by_reason.refund_of_paid_fen, cohort.refund_of_paid_fen, 0) as refund_of_paid_fen,
        coalesce(refunds_on.refunds_on, 0) as refunds_on,
        coalesce(refunds_on.refunds_fen_on, 0) as refunds_fen_on
    from keys
    inner join days on keys.business_date = days.business_date
    left join cohort
        on
            keys.business_date = cohort.business_date
            and keys.breakdown = cohort.breakdown
            and keys.breakdown_value = cohort.breakdown_value
    left join by_reason
        on
            keys.business_date = by_reason.business_date
            and keys.breakdown = by_reason.breakdown
            and keys.breakdown_value = by_reason.breakdown_value
    left join refunds_on
        on
            keys.business_date = refunds_on.business_date
            and keys.breakdown = refunds_on.breakdown
            and keys.breakdown_value = refunds_on.breakdown_value
    left join overall on keys.business_date = overall.business_date
),

all_days as (
    -- every day has its overall row, even a day without paid orders or refunds
    select
        days.business_date,
        'overall' as breakdown,
        'all' as breakdown_value,
        0 as paid_orders,
        0 as gmv_fen,
        0 as refunded_orders,
        0 as refund_of_paid_fen,
        0 as refunds_on,
        0 as refunds_fen_on
    from days
    anti join combined
        on days.business_date = combined.business_date and combined.breakdown = 'overall'
),

unioned as (
    select * from combined
    union all by name
    select * from all_days
),

final as (
    select
        business_date,
        breakdown,
        breakdown_value,
        coalesce(paid_orders, 0) as paid_orders,
        cast(coalesce(gmv_fen, 0) as bigint) as gmv_fen,
        refunded_orders,
        refund_of_paid_fen,
        refunded_orders / nullif(paid_orders, 0) as refund_rate,
        refund_of_paid_fen / nullif(gmv_fen, 0) as refund_amount_rate,
        refunds_on,
        refunds_fen_on,
        {{ this_run() }} as _built_at
    from unioned
)

select * from final
