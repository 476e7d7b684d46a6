-- Main shop coupons (dujiaoka `coupons`).
with

source as (
    select * from {{ source('shop', 'shop__coupons') }}
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
        id as coupon_id,
        coupon as coupon_code,
        discount_fen,
        is_use as use_status,
        is_open = 1 as is_open,
        ret as remaining_uses,
        updated_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
