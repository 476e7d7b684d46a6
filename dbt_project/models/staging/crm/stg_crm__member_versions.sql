-- Every distinct version of every CRM member across the daily snapshots: a changed phone or e-mail
-- still identifies the same person, so identity resolution reads all of them.
with

source as (
    select * from {{ source('crm', 'crm__members') }}
),

final as (
    select
        trim(member_id) as member_id,
        phone,
        email,
        qq,
        wechat_openid,
        nickname,
        registered_at,
        min(business_date) as first_snapshot_date,
        max(business_date) as last_snapshot_date
    from source
    group by all
)

select * from final
