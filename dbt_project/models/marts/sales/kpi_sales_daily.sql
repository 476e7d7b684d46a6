-- Sales KPIs per business day, overall (`shop` = 'all') and per shop, exactly as
-- docs/metrics.md#sales defines
-- them: created and paid orders, GMV (amount actually paid after coupons, of orders paid on the
-- day), conversion, average order value, 客单价, buyers and new buyers (unified `user_key`; a new
-- buyer has no paid order in either shop before the day).
--
-- Incremental by business day: a run rebuilds the days its change set names (macro
-- `kpi_days_changes`: the days an order `fct_orders` rebuilt was created or paid on, before and
-- after, when its payment, amount or buyer changed; the days a buyer's first paid day moved from
-- or to; a new day).
{%- set upstreams = ['fct_orders', 'int_buyer_first_paid'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        pre_hook="{{ before_build(['business_date'], ['business_date'],
            kpi_days_changes(['is_paid', 'amount_fen', 'user_key'], first_paid=true),
            ['fct_orders', 'int_buyer_first_paid']) }}",
        post_hook="{{ after_build(['business_date'], ['business_date'],
            ['fct_orders', 'int_buyer_first_paid']) }}",
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

-- the orders created or paid on the days rebuilt
orders as not materialized (
    select * from {{ ref('fct_orders') }}
    where
        {{ in_change_set(['created_date'], 'select business_date from changed', upstreams) }}
        or {{ in_change_set(['paid_date'], 'select business_date from changed', upstreams) }}
),

shops as (
    select unnest(['all', 'main', 'substation']) as shop
),

first_paid as (
    select * from {{ ref('int_buyer_first_paid') }}
),

scoped as (
    -- every order counted for its shop and for both shops together ('all')
    select * from orders
    union all
    select * replace ('all' as shop) from orders
),

created as (
    select
        created_date as business_date,
        shop,
        count(*) as created_orders,
        count(*) filter (where is_paid) as converted_orders
    from scoped
    group by created_date, shop
),

paid as (
    select
        scoped.paid_date as business_date,
        scoped.shop,
        count(*) as paid_orders,
        cast(sum(scoped.amount_fen) as bigint) as gmv_fen,
        count(distinct scoped.user_key) as buyers,
        count(distinct scoped.user_key) filter (
            where scoped.paid_date = first_paid.first_paid_date
        ) as new_buyers
    from scoped
    inner join first_paid on scoped.user_key = first_paid.user_key
    where scoped.is_paid
    group by scoped.paid_date, scoped.shop
),

final as (
    select
        days.business_date,
        shops.shop,
        coalesce(created.created_orders, 0) as created_orders,
        coalesce(created.converted_orders, 0) as converted_orders,
        coalesce(paid.paid_orders, 0) as paid_orders,
        coalesce(paid.gmv_fen, 0) as gmv_fen,
        coalesce(paid.buyers, 0) as buyers,
        coalesce(paid.new_buyers, 0) as new_buyers,
        created.converted_orders / nullif(created.created_orders, 0) as conversion_rate,
        paid.gmv_fen / nullif(paid.paid_orders, 0) as avg_order_value_fen,
        paid.gmv_fen / nullif(paid.buyers, 0) as customer_unit_price_fen,
        {{ this_run() }} as _built_at
    from days
    cross join shops
    left join created on days.business_date = created.business_date and shops.shop = created.shop
    left join paid on days.business_date = paid.business_date and shops.shop = paid.shop
)

select * from final
