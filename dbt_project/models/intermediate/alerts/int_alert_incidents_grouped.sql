-- Incidents of every alert rule: the days a rule held for the same entity, grouped so that days
-- no more than `incident_gap_days` business days apart are one incident. Per incident its first
-- and last day, the days it held, its peak (the day of the highest score; the later day on a
-- tie) with the measure, baseline, score and volume of that day, and whether it is still open on
-- the evaluated day (the latest business day in the marts): it held then, or within the gap.
-- Works on the days a rule held only, a small share of the signals.
with

signals as (
    select * from {{ ref('alert_signals_daily') }}
),

sales as (
    select * from {{ ref('kpi_sales_daily') }}
),

evaluated as (
    select max(business_date) as evaluated_day from sales
),

firing as (
    select
        *,
        business_date - lag(business_date) over entity_days as days_since_previous
    from signals
    where is_firing
    window entity_days as (partition by rule, entity_type, entity order by business_date)
),

numbered as (
    select
        *,
        count(*) filter (
            where days_since_previous is null
            or days_since_previous > {{ alert_setting('incident_gap_days') }} + 1
        ) over (
            partition by rule, entity_type, entity
            order by business_date
            rows between unbounded preceding and current row
        ) as incident_seq
    from firing
),

ranked as (
    select
        *,
        row_number() over (
            partition by rule, entity_type, entity, incident_seq
            order by score desc nulls last, business_date desc
        ) as peak_rank
    from numbered
),

incidents as (
    select
        rule,
        entity_type,
        entity,
        incident_seq,
        any_value(entity_name) as entity_name,
        any_value(shop) as shop,
        min(business_date) as first_day,
        max(business_date) as last_day,
        count(*) as firing_days,
        cast(sum(volume) as bigint) as total_volume,
        sum(measure) as total_measure,
        max(business_date) filter (where peak_rank = 1) as peak_day,
        any_value(measure) filter (where peak_rank = 1) as metric_value,
        any_value(baseline) filter (where peak_rank = 1) as baseline_value,
        any_value(score) filter (where peak_rank = 1) as score,
        any_value(volume) filter (where peak_rank = 1) as peak_volume,
        list(business_date order by business_date) as firing_dates
    from ranked
    group by rule, entity_type, entity, incident_seq
),

final as (
    select
        md5(
            incidents.rule || '|' || incidents.entity_type || '|' || incidents.entity || '|'
            || incidents.first_day
        ) as alert_id,
        incidents.rule,
        incidents.entity_type,
        incidents.entity,
        incidents.entity_name,
        incidents.shop,
        incidents.first_day,
        incidents.last_day,
        incidents.firing_days,
        incidents.firing_dates,
        incidents.peak_day,
        incidents.metric_value,
        incidents.baseline_value,
        incidents.score,
        incidents.peak_volume,
        incidents.total_volume,
        incidents.total_measure,
        evaluated.evaluated_day,
        evaluated.evaluated_day - incidents.last_day
        <= {{ alert_setting('incident_gap_days') }} as is_open
    from incidents
    cross join evaluated
)

select * from final
