{%- set s = 'low_days_of_cover' -%}
{%- set demand_days = alert_setting(s, 'demand_days') | int(1) -%}
-- Rule `low_days_of_cover`, its daily signal: per shop and SKU and day, the SKU's days_of_cover
-- (docs/metrics.md#turnover-and-days-of-cover, from kpi_inventory_daily: day-end stock value / the
-- mean daily COGS of the last 30
-- days) for SKUs with real demand — at least `min_daily_units` keys delivered a day on average
-- over the last `demand_days` days, all of them in the lake (a lake's first days hold the
-- opening stock running out, not demand). A slow seller with two keys left is not short of stock; a
-- fast seller with less than a day's cover runs out tomorrow unless a batch arrives. Only SKU-days
-- with sales in the 30-day window are listed (days_of_cover is null without them).
with

inventory as (
    select * from {{ ref('kpi_inventory_daily') }}
),

products as (
    select * from {{ ref('dim_products') }}
),

demand as (
    select
        *,
        avg(delivered_units) over recent as daily_units,
        count(*) over recent as demand_days_seen
    from inventory
    where scope = 'sku' and sku_code <> 'unmapped'
    window recent as (
        partition by shop, sku_code
        order by business_date
        range between {{ demand_days - 1 }} preceding and current row
    )
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        'shop_sku' as entity_type,
        demand.shop || '/' || demand.sku_code as entity,
        coalesce(products.canonical_name, demand.sku_code) as entity_name,
        demand.shop,
        demand.business_date,
        demand.days_of_cover as measure,
        cast({{ alert_setting(s, 'max_days') }} as double) as baseline,
        {{ alert_setting(s, 'max_days') }} / greatest(demand.days_of_cover, 0.01) as score,
        cast(round(demand.daily_units * {{ demand_days }}) as bigint)
            as volume,
        demand.demand_days_seen = {{ demand_days }}
        and demand.daily_units >= {{ alert_setting(s, 'min_daily_units') }}
        and demand.days_of_cover < {{ alert_setting(s, 'max_days') }} as is_firing,
        demand.sku_code,
        demand.stock_units,
        demand.daily_units,
        demand.demand_days_seen
    from demand
    left join products on demand.sku_code = products.sku_code
    where demand.days_of_cover is not null
)

select * from final
