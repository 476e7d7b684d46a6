-- Substation products (acg-faka `commodity`).
with

source as (
    select * from {{ source('substation', 'substation__commodity') }}
),

versions as (
    select
        *,
        row_number()
            over (partition by id order by _extracted_at desc, _row_hash asc)
            as version_rank
    from source
),

final as (
    select
        id as commodity_id,
        category_id,
        name as commodity_name,
        trim(code) as commodity_code,
        factory_price_fen,
        price_fen,
        user_price_fen,
        delivery_way = 1 as is_manual,
        status = 1 as is_open,
        create_time as created_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
