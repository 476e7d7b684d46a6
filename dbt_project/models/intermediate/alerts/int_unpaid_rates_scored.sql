{%- set s = 'unpaid_rate_surge' -%}
{%- set baseline_days = alert_setting(s, 'baseline_days') | int(1) -%}
-- Rule `unpaid_rate_surge`, its daily signal: per channel account and creation day, the share of
-- orders created on the day that did not become paid orders (1 − the conversion_rate of
-- docs/metrics.md#sales,
-- for the account the order was to be paid through), against the account's own trailing
-- baseline, scored by the same robust z as refund spikes (median and MAD of the daily shares, σ
-- floored by the binomial standard error). A payment channel that fails, or a checkout that
-- breaks, shows here first.
with

orders as (
    select * from {{ ref('fct_orders') }}
),

accounts as (
    select * from {{ ref('dim_channels') }}
),

daily as (
    select
        account_key,
        created_date as business_date,
        count(*) as created_orders,
        count(*) filter (where not is_paid) as unpaid_orders
    from orders
    where account_key is not null
    group by account_key, created_date
),

rates as (
    select
        *,
        unpaid_orders / created_orders as unpaid_rate
    from daily
),

first_pass as (
    -- the baseline over every day of the window
    select
        *,
        median(unpaid_rate) over baseline_window as first_rate,
        mad(unpaid_rate) over baseline_window as first_mad,
        greatest(
            median(unpaid_rate) over baseline_window,
            (sum(unpaid_orders) over baseline_window + 1)
            / (sum(created_orders) over baseline_window + 2)
        ) as first_floor_rate
    from rates
    window baseline_window as (
        partition by account_key
        order by business_date
        range between {{ baseline_days }} preceding and 1 preceding
    )
),

first_scored as (
    select
        *,
        coalesce(
            unpaid_rate - first_rate >= {{ alert_setting(s, 'min_lift') }}
            and (unpaid_rate - first_rate) / greatest(
                1.4826 * first_mad,
                sqrt(first_floor_rate * (1 - first_floor_rate) / created_orders)
            ) >= {{ alert_setting(s, 'z') }},
            false
        ) as is_surge_day
    from first_pass
),

baselines as (
    -- the baseline again without the days the first pass found surging: a surge that lasts
    -- does not become its own baseline
    select
        *,
        median(unpaid_rate) filter (where not is_surge_day)
            over baseline_window as baseline_rate,
        mad(unpaid_rate) filter (where not is_surge_day)
            over baseline_window as baseline_mad,
        count(*) filter (where not is_surge_day)
            over baseline_window as baseline_days,
        sum(created_orders) filter (where not is_surge_day)
            over baseline_window as baseline_orders,
        sum(unpaid_orders) filter (where not is_surge_day)
            over baseline_window as baseline_unpaid
    from first_scored
    window baseline_window as (
        partition by account_key
        order by business_date
        range between {{ baseline_days }} preceding and 1 preceding
    )
),

floored as (
    select
        *,
        greatest(baseline_rate, (baseline_unpaid + 1) / (baseline_orders + 2)) as floor_rate
    from baselines
),

scored as (
    select
        *,
        greatest(
            1.4826 * baseline_mad, sqrt(floor_rate * (1 - floor_rate) / created_orders)
        ) as sigma
    from floored
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        'channel_account' as entity_type,
        scored.account_key as entity,
        coalesce(accounts.account_name, scored.account_key) as entity_name,
        coalesce(accounts.shop, 'all') as shop,
        scored.business_date,
        scored.unpaid_rate as measure,
        scored.baseline_rate as baseline,
        (scored.unpaid_rate - scored.baseline_rate) / scored.sigma as score,
        cast(scored.created_orders as bigint) as volume,
        coalesce(
            scored.baseline_days >= {{ alert_setting(s, 'min_baseline_days') }}
            and scored.created_orders >= {{ alert_setting(s, 'min_orders') }}
            and scored.unpaid_rate - scored.baseline_rate >= {{ alert_setting(s, 'min_lift') }}
            and (scored.unpaid_rate - scored.baseline_rate) / scored.sigma
            >= {{ alert_setting(s, 'z') }},
            false
        ) as is_firing,
        cast(scored.unpaid_orders as bigint) as unpaid_orders,
        scored.baseline_mad,
        cast(scored.baseline_days as bigint) as baseline_days,
        scored.sigma
    from scored
    left join accounts on scored.account_key = accounts.account_key
)

select * from final
