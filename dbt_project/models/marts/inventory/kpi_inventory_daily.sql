-- Inventory KPIs per business day (docs/metrics.md#inventory) from the stock ledger, at three
-- scopes: `overall` (every SKU of both shops), `shop`, and `sku` (one row per shop and SKU from
-- the day it first held stock). Stock is counted at the end of the day and includes keys imported
-- before the first reported day (opening stock). `inventory_turnover_30d` = Σ COGS over
-- [d-29, d] / mean day-end stock value over the same days; `days_of_cover` = stock value /
-- (Σ COGS over [d-29, d] / 30), null without sales. The 30-day windows see only the reported days
-- (int_business_days). `stockout_orders` (overall and shop rows) = paid orders of the day not
-- delivered within 10 minutes for want of a key.
--
-- Incremental by business day, from stored state: stock carries over from one day to the next, so
-- a run rebuilds every day from the earliest one its change set names (macro
-- `kpi_inventory_days_changes`: the days of stock movements whose count or value changed, before
-- and after, and the payment days of orders whose stock-out flag changed), starting from the
-- stored day-end stock of the day before and the stored COGS and stock value of the 29 days before
-- that for the 30-day windows (as benchmarks/floor.sql does). A series has no rows before its
-- first stock, so a new SKU does not touch the days before it.
{%- set upstreams = ['fct_key_movements', 'fct_orders'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        pre_hook="{{ before_build(['business_date'], ['business_date'],
            kpi_inventory_days_changes(), ['fct_key_movements', 'fct_orders']) }}",
        post_hook="{{ after_build(['business_date'], ['business_date'],
            ['fct_key_movements', 'fct_orders']) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

all_days as not materialized (
    select * from {{ ref('int_business_days') }}
),

-- the days rebuilt (the change set holds every day from its earliest on)
days as (
    select * from all_days
    where
        {{ in_change_set(['business_date'], 'select business_date from changed', upstreams) }}
),

bounds as (
    select
        first_day,
        since,
        -- keys imported before the first day count as one movement on the day before it
        case when since = first_day then first_day - 1 else since end as moved_from
    from (
        select
            (select min(business_date) from all_days) as first_day,
            (select min(business_date) from days) as since
    ) as day_bounds
),

-- the stored rows of the 29 days before the first day rebuilt: the day-end stock carried over
-- and the windows' earlier days
stored as (
    {%- if is_incremental() %}
        select
            built.scope,
            built.shop,
            built.sku_code,
            built.business_date,
            built.stock_units,
            built.stock_value_fen,
            built.cogs_fen
        from {{ this }} as built
        cross join bounds
        where
            built.business_date between bounds.since - 29 and bounds.since - 1
            and built.business_date >= bounds.first_day
    {%- else %}
        select
            cast(null as varchar) as scope,
            cast(null as varchar) as shop,
            cast(null as varchar) as sku_code,
            cast(null as date) as business_date,
            cast(null as bigint) as stock_units,
            cast(null as bigint) as stock_value_fen,
            cast(null as bigint) as cogs_fen
        where false
    {%- endif %}
),

movements as (
    select
        movements.*,
        greatest(movements.business_date, bounds.first_day - 1) as counted_on
    from {{ ref('fct_key_movements') }} as movements
    cross join bounds
    where movements.business_date >= bounds.moved_from or bounds.moved_from < bounds.first_day
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
        scope,
        shop,
        sku_code,
        counted_on as business_date,
        sum(units) filter (where movement = 'received') as received_units,
        -sum(units) filter (where movement = 'delivered') as delivered_units,
        -sum(units) filter (where movement = 'voided') as voided_units,
        sum(units) as units_change,
        sum(value_fen) as value_change_fen,
        -sum(value_fen) filter (where movement = 'delivered') as cogs_fen
    from scoped
    group by all
),

opening as (
    -- everything before the first reported day, as one movement on the day before it
    select daily.*
    from daily
    cross join bounds
    where daily.business_date < bounds.first_day
),

carried as (
    select stored.*
    from stored
    cross join bounds
    where stored.business_date = bounds.since - 1
),

-- each series from the day it first held stock: carried over, or its first movement
series as (
    select
        scope,
        shop,
        sku_code,
        min(starts_on) as starts_on
    from (
        select
            carried.scope,
            carried.shop,
            carried.sku_code,
            carried.business_date as starts_on
        from carried
        union all
        select
            daily.scope,
            daily.shop,
            daily.sku_code,
            greatest(daily.business_date, bounds.first_day) as starts_on
        from daily
        cross join bounds
    ) as series_starts
    group by all
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
    inner join days on series.starts_on <= days.business_date
    cross join bounds
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
            and days.business_date = bounds.first_day
),

stock as (
    select
        grid.*,
        coalesce(carried.stock_units, 0) + sum(grid.units_change) over running as stock_units,
        coalesce(carried.stock_value_fen, 0)
        + sum(grid.value_change_fen) over running as stock_value_fen
    from grid
    left join carried
        on
            grid.scope = carried.scope
            and grid.shop = carried.shop
            and grid.sku_code = carried.sku_code
    window running as (
        partition by grid.scope, grid.shop, grid.sku_code
        order by grid.business_date rows unbounded preceding
    )
),

-- the rebuilt days and the stored days before them, for the 30-day windows (a series has no
-- rows before its first stock: those day-ends held nothing)
windowed as (
    select
        *,
        true as is_rebuilt
    from stock
    union all by name
    select
        scope,
        shop,
        sku_code,
        business_date,
        cogs_fen,
        stock_value_fen,
        false as is_rebuilt
    from stored
),

rolling as (
    select
        windowed.*,
        sum(windowed.cogs_fen) over last_30 as cogs_30d_fen,
        -- the mean over the window's reported day-ends, those before the series' first stock
        -- counting as nothing held
        sum(windowed.stock_value_fen) over last_30
        / least(30, windowed.business_date - bounds.first_day + 1) as avg_stock_value_30d_fen
    from windowed
    cross join bounds
    window last_30 as (
        partition by windowed.scope, windowed.shop, windowed.sku_code
        order by windowed.business_date range between interval 29 days preceding and current row
    )
),

paid_orders as (
    -- every paid order of the days rebuilt, counted for its shop and for both shops ('all')
    select * from {{ ref('fct_orders') }}
    where is_paid and paid_date in (select days.business_date from days)
),

stockouts as (
    select
        shop,
        paid_date as business_date,
        count(*) filter (where is_stockout) as stockout_orders
    from paid_orders
    group by paid_date, shop
    union all
    select
        'all' as shop,
        paid_date as business_date,
        count(*) filter (where is_stockout) as stockout_orders
    from paid_orders
    group by paid_date
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
        end as stockout_orders,
        {{ this_run() }} as _built_at
    from rolling
    left join stockouts
        on
            rolling.scope <> 'sku'
            and rolling.business_date = stockouts.business_date
            and rolling.shop = stockouts.shop
    where rolling.is_rebuilt
)

select * from final
