-- Substation card keys (acg-faka `card`): the latest version of each key. A locked key (status 2)
-- was found invalid and taken out of stock; acg-faka records no time for that, so it is voided
-- when it was imported (the import check is what finds it). The key itself is never in the
-- lake: `key_text` is its keyed hash (HMAC-SHA256 of the trimmed `secret`, hex).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='card_key_id',
        pre_hook="{{ log_before(['card_key_id'], versions_candidates(source('substation', 'substation__card'), 'id', 'card_key_id')) }}",
        post_hook="{{ record_build(['card_key_id'], stale_run_days('_landed_date')) }}",
        on_schema_change='fail',
    )
}}

with

source as (
    select * from {{ source('substation', 'substation__card') }}
    where {{ versions_to_rank(source('substation', 'substation__card'), 'id', 'card_key_id') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by id order by (status <> 0) desc, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        id as card_key_id,
        'substation' as shop,
        commodity_id,
        secret as key_text,
        status as source_status,
        case status when 1 then 'sold' when 2 then 'voided' else 'in_stock' end as key_status,
        create_time as imported_at,
        case when status = 1 then purchase_time end as sold_at,
        case when status = 2 then create_time end as voided_at,
        order_id,
        note,
        _source,
        _extracted_at,
        business_date as _landed_date,
        cast('{{ run_started_at }}' as timestamptz) as _built_at
    from versions
    where version_rank = 1
)

select * from final
