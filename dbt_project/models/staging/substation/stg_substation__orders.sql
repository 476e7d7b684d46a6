-- Substation (acg-faka) orders: the latest extracted version of each order, typed and renamed,
-- with the status in the unified vocabulary shared with the main shop.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        pre_hook="{{ log_before(['order_id'], versions_candidates(source('substation', 'substation__order'), 'id', 'order_id')) }}",
        post_hook="{{ record_build(['order_id'], stale_run_days('_landed_date')) }}",
        on_schema_change='fail',
    )
}}

with

source as (
    select * from {{ source('substation', 'substation__order') }}
    where {{ versions_to_rank(source('substation', 'substation__order'), 'id', 'order_id') }}
),

versions as (
    select
        *,
        -- status only moves forward (unpaid → paid → delivered), so the furthest version is current
        row_number() over (
            partition by id
            order by status desc, delivery_status desc, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        id as order_id,
        'substation' as shop,
        trade_no,
        nullif(owner, 0) as owner_user_id,
        commodity_id,
        card_num as quantity,
        amount_fen,
        pay_id,
        nullif(coupon_id, 0) as coupon_id,
        trim(contact) as buyer_contact,
        secret as delivered_keys_text,
        create_ip as buy_ip,
        create_device,
        status as source_status,
        delivery_status as source_delivery_status,
        case
            when status = 0 then 'unpaid'
            when delivery_status = 1 then 'delivered'
            else 'paid'
        end as order_status,
        status = 1 as is_paid_in_shop,
        create_time as created_at,
        pay_time as paid_at,
        {{ business_date('create_time') }} as created_date,
        _source,
        _extracted_at,
        business_date as _landed_date,
        cast('{{ run_started_at }}' as timestamptz) as _built_at
    from versions
    where version_rank = 1
)

select * from final
