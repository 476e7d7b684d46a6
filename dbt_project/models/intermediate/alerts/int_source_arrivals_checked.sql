{%- set s = 'source_stale' -%}
{%- set overrides = alert_setting(s, 'lag_overrides') -%}
-- Rule `source_stale`, its daily signal: per source and business day, the business days since the
-- source last brought anything (`lag_days`), as ingestion accounted for it in lake/_state: a
-- dataset arrives on a day when its partition read rows, a channel account's statement when its
-- file for the day landed (stg_lake__statement_files). A source stopped arriving when it lags the
-- day by more than `max_lag_days` (per-source overrides for those that do not send every day).
-- Listed for every business day and every source seen at least once, from its first arrival.
with

partitions as (
    select * from {{ ref('stg_lake__ingest_partitions') }}
),

statement_files as (
    select * from {{ ref('stg_lake__statement_files') }}
),

accounts as (
    select * from {{ ref('dim_channels') }}
),

sales as (
    select * from {{ ref('kpi_sales_daily') }}
),

days as (
    select business_date from sales
    where shop = 'all'
),

dataset_arrivals as (
    select
        'dataset' as entity_type,
        dataset as entity,
        {{ dataset_label('dataset') }} as entity_name,
        'all' as shop,
        business_date,
        rows_read as rows_arrived
    from partitions
    where rows_read > 0
),

statement_arrivals as (
    select
        'channel_statement' as entity_type,
        accounts.account_key as entity,
        accounts.account_name || ' 对账单' as entity_name,
        accounts.shop,
        statement_files.statement_date as business_date,
        sum(statement_files.rows_in_file) as rows_arrived
    from statement_files
    inner join accounts
        on
            statement_files.channel = accounts.channel
            and statement_files.account_no = accounts.statement_account_no
    group by all
),

arrivals as (
    select * from dataset_arrivals
    union all
    select * from statement_arrivals
),

sources as (
    select
        entity_type,
        entity,
        any_value(entity_name) as entity_name,
        any_value(shop) as shop,
        min(business_date) as first_arrival_date
    from arrivals
    group by entity_type, entity
),

latest as (
    select
        days.business_date,
        sources.entity_type,
        sources.entity,
        max(arrivals.business_date) as last_arrival_date,
        arg_max(arrivals.rows_arrived, arrivals.business_date) as last_rows_arrived
    from days
    inner join sources on days.business_date >= sources.first_arrival_date
    inner join arrivals
        on
            sources.entity_type = arrivals.entity_type
            and sources.entity = arrivals.entity
            and days.business_date >= arrivals.business_date
    group by all
),

lagged as (
    select
        *,
        business_date - last_arrival_date as lag_days,
        {% if overrides is mapping and overrides -%}
            case
                {%- for dataset, max_lag in overrides.items() %}
                    when entity = '{{ dataset }}' then {{ max_lag }}
                {%- endfor %}
                else {{ alert_setting(s, 'max_lag_days') }}
            end
        {%- else -%}
            {{ alert_setting(s, 'max_lag_days') }}
        {%- endif %} as max_lag_days
    from latest
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        lagged.entity_type,
        lagged.entity,
        sources.entity_name,
        sources.shop,
        lagged.business_date,
        cast(lagged.lag_days as double) as measure,
        cast(lagged.max_lag_days as double) as baseline,
        lagged.lag_days / lagged.max_lag_days as score,
        cast(lagged.last_rows_arrived as bigint) as volume,
        lagged.lag_days > lagged.max_lag_days as is_firing,
        lagged.last_arrival_date,
        cast(lagged.lag_days as bigint) as lag_days
    from lagged
    inner join sources
        on lagged.entity_type = sources.entity_type and lagged.entity = sources.entity
)

select * from final
