-- One row per unified user (`user_key`, identity resolution in models/intermediate/identity): every
-- source identifier the user absorbed, counts per kind, orders per shop, first and last seen, and
-- one primary contact masked for customer service (all but the last 4 characters hidden).
with

-- `not materialized`: read twice, scanning the table is cheaper than sharing a copy of it
users as not materialized (
    select * from {{ ref('int_users_resolved') }}
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

order_buyers as (
    select * from {{ ref('int_order_buyers') }}
),

-- every linkable node once per system that shows it: the observations are counted here once, so
-- everything below works on nodes (kind, value and first-seen time come with the user's node row)
node_systems as (
    select
        node,
        system,
        count(*) as n_seen,
        max(seen_at) as last_seen_at
    from observed
    where is_linkable
    group by node, system
),

user_node_systems as (
    select
        users.user_key,
        users.node_kind,
        users.node_value,
        users.first_seen_at,
        node_systems.system,
        node_systems.n_seen,
        node_systems.last_seen_at
    from node_systems
    inner join users on node_systems.node = users.node
),

-- (system, node) pairs are distinct, and so are their `system:kind:value` texts
identifiers as (
    select
        user_key,
        list_sort(list(system || ':' || node_kind || ':' || node_value)) as identifiers,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from user_node_systems
    group by user_key
),

node_counts as (
    select
        user_key,
        count(*) as node_count,
        count(*) filter (where node_kind = 'phone') as phone_count,
        count(*) filter (where node_kind = 'email') as email_count,
        count(*) filter (where node_kind = 'qq') as qq_count,
        count(*) filter (where node_kind = 'crm') as crm_member_count,
        count(*) filter (where node_kind = 'sub_user') as substation_account_count,
        count(*) filter (
            where node_kind in ('openid_main', 'openid_sub')
        ) as wechat_openid_count,
        bool_and(node_kind = 'order') as is_stand_in
    from users
    group by user_key
),

-- the contact customer service would use: a phone, else an e-mail, else a QQ number; of a kind,
-- the one seen most often, then the earliest
contacts as (
    select
        user_key,
        node_kind,
        node_value,
        sum(n_seen) as n_seen,
        min(first_seen_at) as first_seen_at
    from user_node_systems
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
        node_counts.node_count,
        node_counts.phone_count,
        node_counts.email_count,
        node_counts.qq_count,
        node_counts.crm_member_count,
        node_counts.substation_account_count,
        node_counts.wechat_openid_count,
        coalesce(orders.main_order_count, 0) as main_order_count,
        coalesce(orders.substation_order_count, 0) as substation_order_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        primary_contacts.primary_contact_kind,
        primary_contacts.primary_contact_masked,
        node_counts.crm_member_count > 0 as has_crm_member,
        node_counts.substation_account_count > 0 as has_substation_account,
        node_counts.is_stand_in
    from identifiers
    inner join node_counts on identifiers.user_key = node_counts.user_key
    left join orders on identifiers.user_key = orders.user_key
    left join primary_contacts on identifiers.user_key = primary_contacts.user_key
)

select * from final
