-- One row per unified user (`user_key`, identity resolution in models/intermediate/identity): every
-- source identifier the user absorbed, counts per kind, orders per shop, first and last seen, and
-- one primary contact masked for customer service (all but the last 4 characters hidden).
with

users as (
    select * from {{ ref('int_users_resolved') }}
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

order_buyers as (
    select * from {{ ref('int_order_buyers') }}
),

user_observations as (
    select
        users.user_key,
        observed.system,
        observed.node_kind,
        observed.node_value,
        observed.node,
        observed.seen_at
    from observed
    inner join users on observed.node = users.node
    where observed.is_linkable
),

identifiers as (
    select
        user_key,
        list_sort(list(distinct system || ':' || node_kind || ':' || node_value)) as identifiers,
        count(distinct node) as node_count,
        count(distinct node) filter (where node_kind = 'phone') as phone_count,
        count(distinct node) filter (where node_kind = 'email') as email_count,
        count(distinct node) filter (where node_kind = 'qq') as qq_count,
        count(distinct node) filter (where node_kind = 'crm') as crm_member_count,
        count(distinct node) filter (where node_kind = 'sub_user') as substation_account_count,
        count(distinct node) filter (
            where node_kind in ('openid_main', 'openid_sub')
        ) as wechat_openid_count,
        bool_and(node_kind = 'order') as is_stand_in,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at
    from user_observations
    group by user_key
),

-- the contact customer service would use: a phone, else an e-mail, else a QQ number; of a kind,
-- the one seen most often, then the earliest
contacts as (
    select
        user_key,
        node_kind,
        node_value,
        count(*) as n_seen,
        min(seen_at) as first_seen_at
    from user_observations
    where node_kind in ('phone', 'email', 'qq')
    group by user_key, node_kind, node_value
),

primary_contacts as (
    select
        user_key,
        node_kind as primary_contact_kind,
        {{ mask_contact('node_kind', 'node_value') }} as primary_contact_masked
    from contacts
    qualify row_number() over (
        partition by user_key
        order by
            case node_kind when 'phone' then 1 when 'email' then 2 else 3 end asc,
            n_seen desc,
            first_seen_at asc,
            node_value asc
    ) = 1
),

orders as (
    select
        user_key,
        count(*) filter (where shop = 'main') as main_order_count,
        count(*) filter (where shop = 'substation') as substation_order_count
    from order_buyers
    group by user_key
),

final as (
    select
        identifiers.user_key,
        identifiers.identifiers,
        len(identifiers.identifiers) as identifier_count,
        identifiers.node_count,
        identifiers.phone_count,
        identifiers.email_count,
        identifiers.qq_count,
        identifiers.crm_member_count,
        identifiers.substation_account_count,
        identifiers.wechat_openid_count,
        coalesce(orders.main_order_count, 0) as main_order_count,
        coalesce(orders.substation_order_count, 0) as substation_order_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        primary_contacts.primary_contact_kind,
        primary_contacts.primary_contact_masked,
        identifiers.crm_member_count > 0 as has_crm_member,
        identifiers.substation_account_count > 0 as has_substation_account,
        identifiers.is_stand_in
    from identifiers
    left join orders on identifiers.user_key = orders.user_key
    left join primary_contacts on identifiers.user_key = primary_contacts.user_key
)

select * from final
