-- Fulfilment KPIs per payment day (docs/metrics.md#fulfilment), overall (`shop` = 'all') and per
-- shop:
-- delivery seconds (`delivered_at − paid_at`) of automatic-delivery orders paid on the day and
-- delivered, their p50/p95 (linear interpolation), the share delivered within 30 s among the day's
-- paid automatic-delivery orders, and the day's stock-out orders.
with

orders as (
    select * from {{ ref('fct_orders') }}
),

days as (
    select * from {{ ref('int_business_days') }}
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
        coalesce(measured.stockout_orders, 0) as stockout_orders
    from days
    cross join shops
    left join measured
        on days.business_date = measured.business_date and shops.shop = measured.shop
)

select * from final
