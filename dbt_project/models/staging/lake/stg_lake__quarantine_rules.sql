-- Quarantined rows per dataset, business day and rule (`column:rule`), from ingestion's accounting.
with

partitions as (
    select * from {{ ref('stg_lake__ingest_partitions') }}
),

rules as (
    select
        partitions.dataset,
        partitions.business_date,
        unnest(json_keys(partitions.quarantine_rules)) as rule_name,
        partitions.quarantine_rules
    from partitions
),

final as (
    select
        dataset,
        business_date,
        rule_name,
        cast(
            json_extract(quarantine_rules, '$."' || rule_name || '"') as bigint
        ) as rows_quarantined
    from rules
)

select * from final
