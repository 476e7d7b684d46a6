-- Substation accounts (acg-faka `user`).
with

source as (
    select * from {{ source('substation', 'substation__user') }}
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
        id as user_id,
        username,
        email,
        phone,
        qq,
        status = 1 as is_active,
        create_time as created_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
