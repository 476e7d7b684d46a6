-- Supplier card-key deliveries: one row per key a supplier sent, with the key as the shops store
-- it when they import it (`card_no----secret`, or the secret alone when the supplier sends no
-- number), as its keyed hash: the landing hashed exactly that text into `card_secret`, so it
-- equals the hash a shop's key lands as.
--
-- Incremental by line (`_line_key`: supplier, batch and key, as the contract keys them): a run
-- ranks again only the versions of the lines with a version in its days, or whose current row came
-- from one of them (macro `versions_to_rank`), instead of every version ever landed.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='_line_key',
        pre_hook="{{ log_before(supplier_lines_logged(), versions_candidates(
            source('supplier', 'supplier__card_batches'), supplier_line_key(), '_line_key')) }}",
        post_hook="{{ record_build(supplier_lines_logged(), stale_run_days('_landed_date')) }}",
        on_schema_change='fail',
    )
}}
with

source as (
    select * from {{ source('supplier', 'supplier__card_batches') }}
    where
        {{ versions_to_rank(source('supplier', 'supplier__card_batches'),
            supplier_line_key(), '_line_key') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by _account, batch_no, card_secret
            order by _extracted_at desc, business_date desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        _account as supplier_code,
        trim(batch_no) as batch_no,
        product_name as supplier_product_name,
        trim(supplier_sku) as supplier_sku,
        face_value_fen,
        unit_cost_fen,
        nullif(card_no, '') as card_no,
        card_secret as key_text,
        expiry as expires_on,
        business_date as received_date,
        _source,
        _extracted_at,
        {{ supplier_line_key() }} as _line_key,
        business_date as _landed_date,
        {{ this_run() }} as _built_at
    from versions
    where version_rank = 1
)

select * from final
