-- The card-key suppliers: one row per supplier in the supplier register (seed `suppliers`) or
-- seen in a delivery file, with how many of its items map to a canonical SKU.
with

register as not materialized (
    select * from {{ ref('suppliers') }}
),

batch_lines as (
    select * from {{ ref('stg_supplier__card_batch_lines') }}
),

supplier_items as (
    select * from {{ ref('int_supplier_items_mapped') }}
),

files as (
    select
        supplier_code,
        -- delivery files are named `<supplier name>_<shop>_发货单_<yyyymmdd>.<csv|xlsx>`
        mode(regexp_extract(_source, '([^/_]+)_[^/]*$', 1)) as file_supplier_name,
        string_agg(distinct lower(regexp_extract(_source, '\.([A-Za-z0-9]+)$', 1)), ',')
            as file_kinds,
        count(distinct _source) as file_count,
        count(distinct batch_no) as batch_count,
        count(*) as key_lines,
        min(received_date) as first_received_date,
        max(received_date) as last_received_date
    from batch_lines
    group by supplier_code
),

items as (
    select
        supplier_code,
        count(*) as item_count,
        count(sku_code) as items_mapped,
        count(*) - count(sku_code) as items_unmapped,
        count(distinct supplier_sku) as supplier_sku_count,
        count(distinct sku_code) as sku_count
    from supplier_items
    group by supplier_code
),

codes as (
    select supplier_code from register
    union
    select supplier_code from files
),

final as (
    select
        codes.supplier_code,
        coalesce(register.supplier_name, files.file_supplier_name) as supplier_name,
        coalesce(register.file_kind, files.file_kinds) as file_kind,
        files.file_kinds as observed_file_kinds,
        register.supplier_code is not null as is_registered,
        coalesce(items.item_count, 0) as item_count,
        coalesce(items.items_mapped, 0) as items_mapped,
        coalesce(items.items_unmapped, 0) as items_unmapped,
        coalesce(items.supplier_sku_count, 0) as supplier_sku_count,
        coalesce(items.sku_count, 0) as sku_count,
        coalesce(files.file_count, 0) as file_count,
        coalesce(files.batch_count, 0) as batch_count,
        coalesce(files.key_lines, 0) as key_lines,
        files.first_received_date,
        files.last_received_date
    from codes
    left join register on codes.supplier_code = register.supplier_code
    left join files on codes.supplier_code = files.supplier_code
    left join items on codes.supplier_code = items.supplier_code
)

select * from final
