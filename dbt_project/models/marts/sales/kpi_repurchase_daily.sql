-- Repurchase (docs/metrics.md#repurchase): `repurchase_rate_30d(d)` = among buyers with ≥ 1 paid
-- order in the 30
-- business days [d-29, d], the share with paid orders on ≥ 2 distinct business days in that window;
-- overall (`shop` = 'all', a buyer's days in either shop) and per shop.
--
-- Computed in one pass over buyer-days, not a days × buyers cross product: a buyer's purchase
-- day b (with previous day p and next day n) makes them a buyer of the windows ending on
-- [b, min(n, b+30)) and a repeat buyer of those ending on [b, min(n, p+30)). The intervals of one
-- buyer never overlap, so running sums of +1/−1 events count each buyer once per window.
with

orders as not materialized (
    select * from {{ ref('fct_orders') }}
),

days as (
    select * from {{ ref('int_business_days') }}
),

buyer_days as (
    select distinct
        shop,
        user_key,
        paid_date as bought_on
    from orders
    where is_paid
    union
    select distinct
        'all' as shop,
        user_key,
        paid_date as bought_on
    from orders
    where is_paid
),

sequenced as (
    select
        shop,
        user_key,
        bought_on,
        lag(bought_on) over (partition by shop, user_key order by bought_on) as previous_on,
        lead(bought_on) over (partition by shop, user_key order by bought_on) as next_on
    from buyer_days
),

intervals as (
    select
        shop,
        bought_on,
        least(coalesce(next_on, bought_on + 30), bought_on + 30) as buyer_until,
        case
            when previous_on is not null
                then least(coalesce(next_on, previous_on + 30), previous_on + 30)
        end as repeat_until
    from sequenced
),

events as (
    select
        shop,
        bought_on as business_date,
        1 as buyers,
        0 as repeaters
    from intervals
    union all
    select
        shop,
        buyer_until as business_date,
        -1 as buyers,
        0 as repeaters
    from intervals
    union all
    select
        shop,
        bought_on as business_date,
        0 as buyers,
        1 as repeaters
    from intervals
    where repeat_until > bought_on
    union all
    select
        shop,
        repeat_until as business_date,
        0 as buyers,
        -1 as repeaters
    from intervals
    where repeat_until > bought_on
),

daily_changes as (
    select
        shop,
        business_date,
        sum(buyers) as buyers_change,
        sum(repeaters) as repeaters_change
    from events
    group by all
),

shops as (
    select unnest(['all', 'main', 'substation']) as shop
),

grid as (
    select
        days.business_date,
        shops.shop,
        coalesce(daily_changes.buyers_change, 0) as buyers_change,
        coalesce(daily_changes.repeaters_change, 0) as repeaters_change
    from days
    cross join shops
    left join daily_changes
        on days.business_date = daily_changes.business_date and shops.shop = daily_changes.shop
),

running as (
    select
        business_date,
        shop,
        cast(sum(buyers_change) over w as bigint) as buyers_30d,
        cast(sum(repeaters_change) over w as bigint) as repeat_buyers_30d
    from grid
    window w as (partition by shop order by business_date rows unbounded preceding)
),

final as (
    select
        business_date,
        shop,
        buyers_30d,
        repeat_buyers_30d,
        repeat_buyers_30d / nullif(buyers_30d, 0) as repurchase_rate_30d
    from running
)

select * from final
