-- One row per supplier item as written in a delivery file (supplier, supplier SKU, product
-- name) with the canonical SKU it is (product coding standard, PRODUCT_CODING.md). A supplier's
-- own SKU code names one product: a name the rule cannot code takes the `sku_code` that the SKU
-- code's other names agree on (`match_method` = 'supplier_sku'). Null `sku_code`: see
-- `int_products_unmapped`.
with

coded as (
    select * from {{ ref('int_product_names_coded') }}
),

items as (
    select * from coded
    where system = 'supplier'
),

-- what the supplier's other names for the same supplier SKU were coded to
sku_consensus as (
    select
        supplier_code,
        supplier_sku,
        min(sku_code) as sku_code,
        count(distinct sku_code) as code_count
    from items
    where sku_code is not null
    group by supplier_code, supplier_sku
),

mapped as (
    select
        items.supplier_code,
        items.supplier_sku,
        items.source_name as supplier_product_name,
        items.normalised_name,
        case
            when items.sku_code is not null then items.sku_code
            when sku_consensus.code_count = 1 then sku_consensus.sku_code
        end as sku_code,
        case
            when items.sku_code is not null then items.match_method
            when sku_consensus.code_count = 1 then 'supplier_sku'
        end as match_method,
        items.stated_face_value_fen as face_value_fen,
        coalesce(sku_consensus.code_count, 0) > 1 as has_conflicting_codes,
        items.first_seen_date as first_received_date,
        items.last_seen_date as last_received_date,
        items.line_count as key_lines,
        case
            when items.sku_code is not null or sku_consensus.code_count = 1 then null
            when sku_consensus.code_count > 1 then 'conflicting_supplier_sku'
            else items.unmapped_reason
        end as unmapped_reason
    from items
    left join sku_consensus
        on
            items.supplier_code = sku_consensus.supplier_code
            and items.supplier_sku = sku_consensus.supplier_sku
),

final as (
    select
        *,
        -- the face value the supplier states differs from the SKU's (its code's third part)
        coalesce(
            cast(split_part(sku_code, '-', 3) as bigint) * 100 <> face_value_fen, false
        ) as has_face_value_conflict
    from mapped
)

select * from final
