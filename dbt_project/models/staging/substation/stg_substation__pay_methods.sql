-- Substation payment methods (acg-faka `pay`), with the channel each one settles through.
with

source as (
    select * from {{ source('substation', 'substation__pay') }}
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
        id as pay_id,
        'substation' as shop,
        name as pay_name,
        code as pay_code,
        handle as pay_handler,
        {{ pay_channel('code') }} as channel,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
