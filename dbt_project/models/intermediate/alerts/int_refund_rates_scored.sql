{%- set s = 'refund_spike' -%}
{%- set window_days = alert_setting(s, 'window_days') | int(1) -%}
{%- set baseline_days = alert_setting(s, 'baseline_days') | int(1) -%}
-- Rule `refund_spike`, its daily signal: per supplier (of the delivered key), category and SKU and
-- payment day, the refund rate of docs/metrics.md#refund-rate (the payment-day cohort, from
-- kpi_refunds_daily) of
-- the orders paid in the `window_days` days ending on the day, against the entity's own baseline:
-- the same rate over the `baseline_days` windows before (not overlapping the day's window).
-- Robust z = (rate − median) / σ, σ = the larger of 1.4826 × MAD and the binomial standard error
-- at the baseline rate and the window's paid orders: a MAD of 0 (a rate that is 0 on most days)
-- does not make every refund a spike. The baseline rate of that floor is the larger of the median
-- and the pooled rate of the baseline days with one refund in two orders added (never 0). The
-- baseline is taken twice: the second time without the windows the first found spiking, so that
-- a spike lasting for days does not become its own baseline. The lift the rule asks for is
-- measured from that floor rate: the median of windows with a handful of refunds each
-- understates a low rate.
with

refund_kpis as (
    select * from {{ ref('kpi_refunds_daily') }}
),

suppliers as (
    select * from {{ ref('dim_suppliers') }}
),

products as not materialized (
    select * from {{ ref('dim_products') }}
),

daily as (
    select
        breakdown as entity_type,
        breakdown_value as entity,
        business_date,
        paid_orders,
        refunded_orders
    from refund_kpis
    where
        breakdown in ('supplier', 'category', 'sku')
        and breakdown_value not in ('none', 'unmapped')
        and paid_orders > 0
),

rates as (
    -- the cohort of the `window_days` payment days ending on the day
    select
        entity_type,
        entity,
        business_date,
        paid_orders as day_paid_orders,
        sum(paid_orders) over recent as paid_orders,
        sum(refunded_orders) over recent as refunded_orders,
        sum(refunded_orders) over recent / sum(paid_orders) over recent as refund_rate
    from daily
    window recent as (
        partition by entity_type, entity
        order by business_date
        range between {{ window_days - 1 }} preceding and current row
    )
),

first_pass as (
    -- the baseline over every window of the baseline days
    select
        *,
        median(refund_rate) over baseline_window as first_rate,
        mad(refund_rate) over baseline_window as first_mad,
        greatest(
            median(refund_rate) over baseline_window,
            (sum(refunded_orders) over baseline_window + 1)
            / (sum(paid_orders) over baseline_window + 2)
        ) as first_floor_rate
    from rates
    window baseline_window as (
        partition by entity_type, entity
        order by business_date
        range between {{ baseline_days + window_days - 1 }} preceding
        and {{ window_days }} preceding
    )
),

first_scored as (
    select
        *,
        coalesce(
            refund_rate - first_floor_rate >= {{ alert_setting(s, 'min_lift') }}
            and refunded_orders >= {{ alert_setting(s, 'min_refunds') }}
            and (refund_rate - first_rate) / greatest(
                1.4826 * first_mad,
                sqrt(first_floor_rate * (1 - first_floor_rate) / paid_orders)
            ) >= {{ alert_setting(s, 'z') }},
            false
        ) as is_spike_day
    from first_pass
),

baselines as (
    -- the baseline again without the windows the first pass found spiking: a spike that lasts
    -- does not become its own baseline
    select
        *,
        median(refund_rate) filter (where not is_spike_day)
            over baseline_window as baseline_rate,
        mad(refund_rate) filter (where not is_spike_day)
            over baseline_window as baseline_mad,
        count(*) filter (where not is_spike_day)
            over baseline_window as baseline_days,
        sum(paid_orders) filter (where not is_spike_day)
            over baseline_window as baseline_orders,
        sum(refunded_orders) filter (where not is_spike_day)
            over baseline_window as baseline_refunds
    from first_scored
    window baseline_window as (
        partition by entity_type, entity
        order by business_date
        range between {{ baseline_days + window_days - 1 }} preceding
        and {{ window_days }} preceding
    )
),

floored as (
    select
        *,
        greatest(
            baseline_rate, (baseline_refunds + 1) / (baseline_orders + 2)
        ) as floor_rate
    from baselines
),

scored as (
    select
        *,
        greatest(
            1.4826 * baseline_mad, sqrt(floor_rate * (1 - floor_rate) / paid_orders)
        ) as sigma
    from floored
),

names as (
    select
        'supplier' as entity_type,
        supplier_code as entity,
        supplier_name as entity_name
    from suppliers
    union all
    select distinct
        'category' as entity_type,
        category_code as entity,
        category_name as entity_name
    from products
    union all
    select
        'sku' as entity_type,
        sku_code as entity,
        canonical_name as entity_name
    from products
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        scored.entity_type,
        scored.entity,
        coalesce(names.entity_name, scored.entity) as entity_name,
        'all' as shop,
        scored.business_date,
        scored.refund_rate as measure,
        scored.baseline_rate as baseline,
        (scored.refund_rate - scored.baseline_rate) / scored.sigma as score,
        cast(scored.paid_orders as bigint) as volume,
        coalesce(
            scored.baseline_days >= {{ alert_setting(s, 'min_baseline_days') }}
            and scored.paid_orders >= {{ alert_setting(s, 'min_orders') }}
            and scored.refunded_orders >= {{ alert_setting(s, 'min_refunds') }}
            and scored.refund_rate - scored.floor_rate >= {{ alert_setting(s, 'min_lift') }}
            and (scored.refund_rate - scored.baseline_rate) / scored.sigma
            >= {{ alert_setting(s, 'z') }},
            false
        ) as is_firing,
        cast(scored.refunded_orders as bigint) as refunded_orders,
        cast(scored.day_paid_orders as bigint) as day_paid_orders,
        scored.baseline_mad,
        cast(scored.baseline_days as bigint) as baseline_days,
        cast(scored.baseline_orders as bigint) as baseline_orders,
        cast(scored.baseline_refunds as bigint) as baseline_refunds,
        scored.floor_rate,
        scored.sigma,
        scored.refunded_orders - scored.baseline_rate * scored.paid_orders as excess_refunds
    from scored
    left join names
        on scored.entity_type = names.entity_type and scored.entity = names.entity
)

select * from final
