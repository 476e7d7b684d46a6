-- Data quality per business day, one row per check and subject: rows quarantined by ingestion
-- (per dataset, with the count per rule), orders whose product maps to no `sku_code`, orders whose
-- buyer resolved to no `user_key`, statement lines matching no shop order, shop keys without a
-- supplier record (no cost), and source products that do not map (by the day they were listed).
with

partitions as (
    select * from {{ ref('stg_lake__ingest_partitions') }}
),

orders as not materialized (
    select * from {{ ref('fct_orders') }}
),

lines as (
    select * from {{ ref('int_statement_lines') }}
),

keys as (
    select * from {{ ref('int_card_keys_costed') }}
),

quarantine as (
    select
        business_date,
        'quarantine' as check_name,
        dataset as subject,
        rows_read as rows_checked,
        rows_quarantined as rows_flagged,
        cast(quarantine_rules as varchar) as detail
    from partitions
),

unmapped_orders as (
    select
        created_date as business_date,
        'unmapped_product' as check_name,
        shop || '.orders' as subject,
        count(*) as rows_checked,
        count(*) filter (where sku_code is null) as rows_flagged,
        cast(
            to_json(list(distinct listing_id) filter (where sku_code is null)) as varchar
        ) as detail
    from orders
    group by all
),

unresolved_buyers as (
    select
        created_date as business_date,
        'unresolved_identity' as check_name,
        shop || '.orders' as subject,
        count(*) as rows_checked,
        count(*) filter (where user_key is null) as rows_flagged,
        cast(null as varchar) as detail
    from orders
    group by all
),

unmatched_lines as (
    select
        statement_date as business_date,
        'statement_line_without_order' as check_name,
        account_key as subject,
        count(*) as rows_checked,
        count(*) filter (where order_id is null) as rows_flagged,
        cast(
            to_json(list(merchant_order_no) filter (where order_id is null)) as varchar
        ) as detail
    from lines
    group by all
),

uncosted_keys as (
    select
        {{ business_date('imported_at') }} as business_date,
        'key_without_supplier_record' as check_name,
        shop || '.keys' as subject,
        count(*) as rows_checked,
        count(*) filter (where not has_supplier_record) as rows_flagged,
        cast(null as varchar) as detail
    from keys
    group by all
),

checks as (
    select * from quarantine
    union all
    select * from unmapped_orders
    union all
    select * from unresolved_buyers
    union all
    select * from unmatched_lines
    union all
    select * from uncosted_keys
),

final as (
    select
        business_date,
        check_name,
        subject,
        cast(rows_checked as bigint) as rows_checked,
        cast(rows_flagged as bigint) as rows_flagged,
        rows_flagged / nullif(rows_checked, 0) as flagged_rate,
        detail
    from checks
)

select * from final
