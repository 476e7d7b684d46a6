-- Main shop payment methods (dujiaoka `pays`), with the channel each one settles through.
with

source as (
    select * from {{ source('shop', 'shop__pays') }}
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
        'main' as shop,
        pay_name,
        pay_check as pay_code,
        pay_method,
        merchant_id,
        {{ pay_channel('pay_check') }} as channel,
        is_open in (1, 2) as is_open,
        updated_at,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
