{%- set s = 'quarantine_rate_high' -%}
-- Rule `quarantine_rate_high`, its daily signal: per dataset and business day, the share of the
-- rows read that ingestion refused into the quarantine (dq_daily, check `quarantine`), against a
-- fixed ceiling, for days with enough rows read to make a share mean something.
with

quality as (
    select * from {{ ref('dq_daily') }}
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        'dataset' as entity_type,
        subject as entity,
        {{ dataset_label('subject') }} as entity_name,
        'all' as shop,
        business_date,
        flagged_rate as measure,
        cast({{ alert_setting(s, 'max_rate') }} as double) as baseline,
        flagged_rate / {{ alert_setting(s, 'max_rate') }} as score,
        rows_checked as volume,
        coalesce(
            rows_checked >= {{ alert_setting(s, 'min_rows') }}
            and flagged_rate > {{ alert_setting(s, 'max_rate') }},
            false
        ) as is_firing,
        rows_flagged as rows_quarantined,
        detail as quarantine_rules
    from quality
    where check_name = 'quarantine'
)

select * from final
