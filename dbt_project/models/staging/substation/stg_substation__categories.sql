-- Substation categories (acg-faka `category`).
with

source as (
    select * from {{ source('substation', 'substation__category') }}
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
        id as category_id,
        trim(name) as category_name,
        sort as sort_order,
        status = 1 as is_open,
        create_time as created_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
