-- Fulfilment KPIs per payment day (docs/metrics.md#fulfilment), overall (`shop` = 'all') and per
-- shop:
-- delivery seconds (`delivered_at − paid_at`) of automatic-delivery orders paid on the day and
-- delivered, their p50/p95 (linear interpolation), the share delivered within 30 s among the day's
-- paid automatic-delivery orders, and the day's stock-out orders.
--
-- Incremental by payment day: a run rebuilds the days its change set names (macro
-- `kpi_days_changes`: the days an order `fct_orders` rebuilt was paid on, before and after, when
-- its payment, delivery or stock-out changed; a new day).
{%- set upstreams = ['fct_orders'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        pre_hook="{{ before_build(['business_date'], ['business_date'],
            kpi_days_changes(['is_paid', 'is_manual', 'delivery_seconds', 'is_stockout']),
            ['fct_orders']) }}",
        post_hook="{{ after_build(['business_date'], ['business_date'], ['fct_orders']) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

days as (
    select * from {{ ref('int_business_days') }}
    where
        {{ in_change_set(['business_date'], 'select business_date from changed', upstreams) }}
),

-- the orders paid on the days rebuilt
orders as (
    select * from {{ ref('fct_orders') }}
    where {{ in_change_set(['paid_date'], 'select business_date from changed', upstreams) }}
),

shops as (
    select unnest(['all', 'main', 'substation']) as shop
),

auto_paid as (
    -- every paid automatic-delivery order, including a lost callback the shop never delivered
    select * from orders
    where is_paid and not is_manual
),

scoped as (
    -- every order counted for its shop and for both shops together ('all')
    select * from auto_paid
    union all
    select * replace ('all' as shop) from auto_paid
),

measured as (
    select
        paid_date as business_date,
        shop,
        count(*) as auto_paid_orders,
        count(delivery_seconds) as delivered_orders,
        count(*) filter (where delivery_seconds <= 30) as delivered_within_30s,
        quantile_cont(delivery_seconds, 0.5) as delivery_p50_s,
        quantile_cont(delivery_seconds, 0.95) as delivery_p95_s,
        avg(delivery_seconds) as delivery_mean_s,
        max(delivery_seconds) as delivery_max_s,
        count(*) filter (where is_stockout) as stockout_orders
    from scoped
    group by paid_date, shop
),

final as (
    select
        days.business_date,
        shops.shop,
        coalesce(measured.auto_paid_orders, 0) as auto_paid_orders,
        coalesce(measured.delivered_orders, 0) as delivered_orders,
        coalesce(measured.delivered_within_30s, 0) as delivered_within_30s,
        measured.delivered_within_30s / nullif(measured.auto_paid_orders, 0)
            as delivered_within_30s_rate,
        cast(measured.delivery_p50_s as double) as delivery_p50_s,
        cast(measured.delivery_p95_s as double) as delivery_p95_s,
        cast(measured.delivery_mean_s as double) as delivery_mean_s,
        cast(measured.delivery_max_s as bigint) as delivery_max_s,
        coalesce(measured.stockout_orders, 0) as stockout_orders,
        {{ this_run() }} as _built_at
    from days
    cross join shops
    left join measured
        on days.business_date = measured.business_date and shops.shop = measured.shop
)

select * from final
