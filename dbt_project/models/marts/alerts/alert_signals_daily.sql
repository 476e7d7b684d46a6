-- The history of every alert rule: one row per rule, entity and business day with the rule's
-- measure, what it is compared with, its score and whether the rule held that day (the daily
-- signals of models/intermediate/alerts, one model per rule). `alerts` groups the days a rule
-- held into incidents; a dashboard draws this mart.
with

refund_rates as (
    select * from {{ ref('int_refund_rates_scored') }}
),

stockouts as (
    select * from {{ ref('int_stockouts_counted') }}
),

days_of_cover as (
    select * from {{ ref('int_days_of_cover_checked') }}
),

unpaid_rates as (
    select * from {{ ref('int_unpaid_rates_scored') }}
),

lost_callbacks as (
    select * from {{ ref('int_lost_callbacks_counted') }}
),

duplicate_payments as (
    select * from {{ ref('int_duplicate_payments_counted') }}
),

source_arrivals as (
    select * from {{ ref('int_source_arrivals_checked') }}
),

quarantine_rates as (
    select * from {{ ref('int_quarantine_rates_checked') }}
),

signals as (
    -- the rule models share these columns; each adds its own details, left out here
    select * from refund_rates
    union all by name
    select * from stockouts
    union all by name
    select * from days_of_cover
    union all by name
    select * from unpaid_rates
    union all by name
    select * from lost_callbacks
    union all by name
    select * from duplicate_payments
    union all by name
    select * from source_arrivals
    union all by name
    select * from quarantine_rates
),

final as (
    select
        md5(rule || '|' || entity_type || '|' || entity || '|' || business_date) as signal_id,
        rule,
        entity_type,
        entity,
        entity_name,
        shop,
        business_date,
        cast(measure as double) as measure,
        cast(baseline as double) as baseline,
        cast(score as double) as score,
        cast(volume as bigint) as volume,
        coalesce(is_firing, false) as is_firing
    from signals
)

select * from final
