-- Main shop refunds (the `refunds` table this platform adds to dujiaoka): latest version of each,
-- reasons mapped to the platform's reason codes (seed `refund_reasons`).
with

source as (
    select * from {{ source('shop', 'shop__refunds') }}
),

reasons as (
    select * from {{ ref('refund_reasons') }}
),

versions as (
    select
        *,
        -- status moves from pending (0) to succeeded (1) or failed (2): the settled one is current
        row_number() over (
            partition by id order by (status <> 0) desc, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        versions.id as refund_id,
        versions.refund_no,
        versions.order_sn,
        versions.amount_fen,
        trim(versions.reason) as reason_text,
        coalesce(reasons.reason_code, 'other') as reason_code,
        versions.status as source_status,
        case versions.status when 1 then 'succeeded' when 2 then 'failed' else 'pending' end
            as refund_status,
        versions.created_at as requested_at,
        case when versions.status = 1 then versions.succeeded_at end as succeeded_at,
        versions._source,
        versions._extracted_at
    from versions
    left join reasons on trim(versions.reason) = reasons.reason_text
    where versions.version_rank = 1
)

select * from final
