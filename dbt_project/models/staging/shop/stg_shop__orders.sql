-- Main shop (dujiaoka) orders: the latest extracted version of each order, typed and renamed,
-- with the status in the unified vocabulary shared with the substation.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        pre_hook="{{ log_before(['order_id'], versions_candidates(source('shop', 'shop__orders'), 'id', 'order_id')) }}",
        post_hook="{{ record_build(['order_id'], stale_run_days('_landed_date')) }}",
        on_schema_change='fail',
    )
}}

with

source as (
    select * from {{ source('shop', 'shop__orders') }}
    where {{ versions_to_rank(source('shop', 'shop__orders'), 'id', 'order_id') }}
),

versions as (
    select
        *,
        -- the first version seen in a paid status: paid_at's fallback (docs/metrics.md#paid_at)
        min(updated_at) filter (where status in (2, 3, 4, 5, 6)) over (partition by id)
            as first_seen_paid_at,
        row_number() over (
            partition by id order by updated_at desc, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        id as order_id,
        'main' as shop,
        order_sn,
        goods_id,
        nullif(coupon_id, 0) as coupon_id,
        title,
        type = 2 as is_manual,
        goods_price_fen as unit_price_fen,
        buy_amount as quantity,
        coupon_discount_price_fen as coupon_discount_fen,
        wholesale_discount_price_fen as wholesale_discount_fen,
        total_price_fen,
        actual_price_fen as amount_fen,
        lower(trim(email)) as buyer_email_typed,
        email as buyer_email_raw,
        info as delivered_keys_text,
        pay_id,
        buy_ip,
        nullif(trim(trade_no), '') as channel_txn_no,
        status as source_status,
        case status
            when 1 then 'unpaid'
            when -1 then 'expired'
            when 2 then 'paid'
            when 3 then 'processing'
            when 4 then 'delivered'
            when 5 then 'delivery_failed'
            when 6 then 'abnormal'
        end as order_status,
        status in (2, 3, 4, 5, 6) as is_paid_in_shop,
        created_at,
        updated_at,
        first_seen_paid_at,
        case when status = 4 then updated_at end as completed_at,
        deleted_at,
        {{ business_date('created_at') }} as created_date,
        _source,
        _extracted_at,
        business_date as _landed_date,
        cast('{{ run_started_at }}' as timestamptz) as _built_at
    from versions
    where version_rank = 1
)

select * from final
