-- Ingestion's accounting per dataset and business day (lake/_state).
with

source as (
    select * from {{ source('lake', 'ingest_state') }}
),

final as (
    select
        dataset,
        business_date,
        source as source_system,
        read as rows_read,
        landed as rows_landed,
        quarantined as rows_quarantined,
        skipped as rows_skipped,
        coalesce(rules, '{}') as quarantine_rules,
        coalesce(skipped_detail, '{}') as skipped_detail,
        seconds as ingest_seconds,
        contract_version
    from source
)

select * from final
