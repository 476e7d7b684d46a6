-- Main shop card keys (dujiaoka `carmis`): the latest version of each key. The key itself is
-- never in the lake: `key_text` is its keyed hash (HMAC-SHA256 of the trimmed `carmi`, hex).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='card_key_id',
        pre_hook="{{ log_before(['card_key_id'], versions_candidates(source('shop', 'shop__carmis'), 'id', 'card_key_id')) }}",
        post_hook="{{ record_build(['card_key_id'], stale_run_days('_landed_date')) }}",
        on_schema_change='fail',
    )
}}

with

source as (
    select * from {{ source('shop', 'shop__carmis') }}
    where {{ versions_to_rank(source('shop', 'shop__carmis'), 'id', 'card_key_id') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by id order by updated_at desc, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        id as card_key_id,
        'main' as shop,
        goods_id,
        carmi as key_text,
        status as source_status,
        case
            when deleted_at is not null then 'voided'
            when status = 2 then 'sold'
            else 'in_stock'
        end as key_status,
        is_loop = 1 as is_loop,
        created_at as imported_at,
        case when status = 2 and deleted_at is null then updated_at end as sold_at,
        deleted_at as voided_at,
        updated_at,
        _source,
        _extracted_at,
        business_date as _landed_date,
        cast('{{ run_started_at }}' as timestamptz) as _built_at
    from versions
    where version_rank = 1
)

select * from final
