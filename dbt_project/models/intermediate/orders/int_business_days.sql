-- The business days the marts report on: from the first day the shops have orders to the last.
-- (Keys imported before the first day still count as opening stock; the 30-day windows see only
-- these days, as "over the same 30 day-ends" (docs/metrics.md#turnover-and-days-of-cover) reads
-- within the data's horizon.)
with

orders as (
    select * from {{ ref('int_orders_unified') }}
),

bounds as (
    select
        min(created_date) as first_day,
        max(created_date) as last_day
    from orders
),

days as (
    select unnest(generate_series(first_day, last_day, interval 1 day)) as day_start
    from bounds
),

final as (
    select cast(days.day_start as date) as business_date
    from days
)

select * from final
