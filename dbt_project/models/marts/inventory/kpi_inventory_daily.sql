-- Inventory KPIs per business day (docs/metrics.md#inventory) from the stock ledger, at three
-- scopes:
-- `overall` (every SKU of both shops), `shop`, and `sku` (one row per shop and SKU that ever held
-- stock). Stock is counted at the end of the day and includes keys imported before the first
-- reported day (opening stock). `inventory_turnover_30d` = Σ COGS over [d-29, d] / mean day-end
-- stock value over the same days; `days_of_cover` = stock value / (Σ COGS over [d-29, d] / 30),
-- null without sales. The 30-day windows see only the reported days (int_business_days).
-- `stockout_orders` (overall and shop rows) = paid orders of the day not delivered within 10
-- minutes for want of a key.
with

movements as not materialized (
    select * from {{ ref('fct_key_movements') }}
),

orders as not materialized (
    select * from {{ ref('fct_orders') }}
),

days as not materialized (
    select * from {{ ref('int_business_days') }}
),

first_day as (
    select min(business_date) as first_day from days
),

scoped as (
    -- every movement counted at each scope it belongs to
    select
        'overall' as scope,
        'all' as shop,
        'all' as sku_code,
        movements.* exclude (shop, sku_code)
    from movements
    union all
    select
        'shop' as scope,
        movements.shop,
        'all' as sku_code,
        movements.* exclude (shop, sku_code)
    from movements
    union all
    select
        'sku' as scope,
        movements.shop,
        coalesce(movements.sku_code, 'unmapped') as sku_code,
        movements.* exclude (shop, sku_code)
    from movements
),

daily as (
    select
        scoped.scope,
        scoped.shop,
        scoped.sku_code,
        greatest(scoped.business_date, first_day.first_day - 1) as business_date,
        sum(scoped.units) filter (where scoped.movement = 'received') as received_units,
        -sum(scoped.units) filter (where scoped.movement = 'delivered') as delivered_units,
        -sum(scoped.units) filter (where scoped.movement = 'voided') as voided_units,
        sum(scoped.units) as units_change,
        sum(scoped.value_fen) as value_change_fen,
        -sum(scoped.value_fen) filter (where scoped.movement = 'delivered') as cogs_fen
    from scoped
    cross join first_day
    group by all
),

series as (
    select distinct
        scope,
        shop,
        sku_code
    from daily
),

opening as (
    -- everything before the first reported day, as one movement on the day before it
    select daily.*
    from daily
    cross join first_day
    where daily.business_date < first_day.first_day
),

grid as (
    select
        series.scope,
        series.shop,
        series.sku_code,
        days.business_date,
        coalesce(daily.received_units, 0) as received_units,
        coalesce(daily.delivered_units, 0) as delivered_units,
        coalesce(daily.voided_units, 0) as voided_units,
        coalesce(daily.units_change, 0) + coalesce(opening.units_change, 0) as units_change,
        coalesce(daily.value_change_fen, 0)
        + coalesce(opening.value_change_fen, 0) as value_change_fen,
        coalesce(daily.cogs_fen, 0) as cogs_fen
    from series
    cross join days
    cross join first_day
    left join daily
        on
            series.scope = daily.scope
            and series.shop = daily.shop
            and series.sku_code = daily.sku_code
            and days.business_date = daily.business_date
    left join opening
        on
            series.scope = opening.scope
            and series.shop = opening.shop
            and series.sku_code = opening.sku_code
            and days.business_date = first_day.first_day
),

stock as (
    select
        *,
        sum(units_change) over running as stock_units,
        sum(value_change_fen) over running as stock_value_fen
    from grid
    window running as (
        partition by scope, shop, sku_code order by business_date rows unbounded preceding
    )
),

rolling as (
    select
        *,
        sum(cogs_fen) over last_30 as cogs_30d_fen,
        avg(stock_value_fen) over last_30 as avg_stock_value_30d_fen
    from stock
    window last_30 as (
        partition by scope, shop, sku_code order by business_date rows between 29 preceding
        and current row
    )
),

paid_orders as (
    -- every paid order counted for its shop and for both shops together ('all')
    select * from orders
    where is_paid
    union all
    select * replace ('all' as shop) from orders
    where is_paid
),

stockouts as (
    select
        paid_date as business_date,
        shop,
        count(*) filter (where is_stockout) as stockout_orders
    from paid_orders
    group by paid_date, shop
),

final as (
    select
        rolling.business_date,
        rolling.scope,
        rolling.shop,
        rolling.sku_code,
        cast(rolling.stock_units as bigint) as stock_units,
        cast(rolling.stock_value_fen as bigint) as stock_value_fen,
        cast(rolling.received_units as bigint) as received_units,
        cast(rolling.delivered_units as bigint) as delivered_units,
        cast(rolling.voided_units as bigint) as voided_units,
        cast(rolling.cogs_fen as bigint) as cogs_fen,
        cast(rolling.cogs_30d_fen as bigint) as cogs_30d_fen,
        rolling.avg_stock_value_30d_fen,
        rolling.cogs_30d_fen / nullif(rolling.avg_stock_value_30d_fen, 0)
            as inventory_turnover_30d,
        case
            when rolling.cogs_30d_fen > 0
                then rolling.stock_value_fen / (rolling.cogs_30d_fen / 30)
        end as days_of_cover,
        case
            when rolling.scope <> 'sku' then coalesce(stockouts.stockout_orders, 0)
        end as stockout_orders
    from rolling
    left join stockouts
        on
            rolling.scope <> 'sku'
            and rolling.business_date = stockouts.business_date
            and rolling.shop = stockouts.shop
)

select * from final
