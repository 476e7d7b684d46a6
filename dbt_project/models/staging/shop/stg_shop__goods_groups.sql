-- Main shop categories (dujiaoka `goods_group`): the latest version of each.
with

source as (
    select * from {{ source('shop', 'shop__goods_group') }}
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
        id as group_id,
        trim(gp_name) as group_name,
        is_open = 1 as is_open,
        ord as sort_order,
        created_at,
        updated_at,
        deleted_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
