-- CRM members: the latest snapshot's version of each member (files are full daily snapshots).
with

source as (
    select * from {{ source('crm', 'crm__members') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by member_id
            order by business_date desc, updated_at desc, _extracted_at desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        trim(member_id) as member_id,
        phone,
        email,
        qq,
        wechat_openid,
        nickname,
        level as member_level,
        registered_at,
        updated_at,
        business_date as snapshot_date,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
