-- Main shop products (dujiaoka `goods`): the latest version of each listing.
with

source as (
    select * from {{ source('shop', 'shop__goods') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by id order by updated_at desc nulls last, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        id as goods_id,
        group_id,
        gd_name as goods_name,
        retail_price_fen,
        actual_price_fen as price_fen,
        in_stock,
        sales_volume,
        type = 2 as is_manual,
        is_open = 1 as is_open,
        created_at,
        updated_at,
        deleted_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
