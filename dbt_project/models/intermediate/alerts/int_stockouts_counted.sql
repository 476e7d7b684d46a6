{%- set s = 'stockout' -%}
-- Rule `stockout`, its daily signal: per shop and SKU and payment day, the stock-out orders of
-- docs/metrics.md#stock-outs (paid, automatic delivery, not delivered within 10 minutes for want of
-- a key:
-- fct_orders.is_stockout, the orders anomaly_orders lists as `undelivered_10m`) among the day's
-- paid automatic-delivery orders, with those still undelivered now and the SKU's stock at the
-- end of the day (kpi_inventory_daily). Stock is per shop, so the entity is the shop's SKU. Only
-- days with at least one stock-out order are listed: on any other day the rule cannot hold.
with

orders as (
    select * from {{ ref('fct_orders') }}
),

inventory as (
    select * from {{ ref('kpi_inventory_daily') }}
),

products as (
    select * from {{ ref('dim_products') }}
),

daily as (
    select
        shop,
        sku_code,
        paid_date as business_date,
        count(*) as paid_orders,
        count(*) filter (where is_stockout) as stockout_orders,
        count(*) filter (where is_stockout and delivered_at is null) as waiting_orders
    from orders
    where is_paid and not is_manual and sku_code is not null
    group by shop, sku_code, paid_date
),

stock as (
    select
        business_date,
        shop,
        sku_code,
        stock_units
    from inventory
    where scope = 'sku'
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        'shop_sku' as entity_type,
        daily.shop || '/' || daily.sku_code as entity,
        coalesce(products.canonical_name, daily.sku_code) as entity_name,
        daily.shop,
        daily.business_date,
        cast(daily.stockout_orders as double) as measure,
        cast({{ alert_setting(s, 'min_orders') }} as double) as baseline,
        daily.stockout_orders / {{ alert_setting(s, 'min_orders') }} as score,
        cast(daily.paid_orders as bigint) as volume,
        daily.stockout_orders >= {{ alert_setting(s, 'min_orders') }}
        and daily.stockout_orders / daily.paid_orders
        >= {{ alert_setting(s, 'min_share') }} as is_firing,
        daily.sku_code,
        cast(daily.stockout_orders as bigint) as stockout_orders,
        cast(daily.waiting_orders as bigint) as waiting_orders,
        cast(stock.stock_units as bigint) as stock_units
    from daily
    left join products on daily.sku_code = products.sku_code
    left join stock
        on
            daily.shop = stock.shop
            and daily.sku_code = stock.sku_code
            and daily.business_date = stock.business_date
    where daily.stockout_orders > 0
)

select * from final
