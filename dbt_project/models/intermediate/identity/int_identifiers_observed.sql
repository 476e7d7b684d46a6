-- Every buyer identifier any system shows, one row per occurrence: which system and field it
-- came from, the raw text, the record it sits on (`record_key`: the order, account or CRM member
-- whose identifiers belong to one person) and its normalised node (`phone:13800138000`,
-- `email:abc@qq.com`, `qq:12345`, `crm:M1000`, `sub_user:1001`, `openid_main:o…`, `openid_sub:o…`).
--
-- Rules (macros/identity.sql): phones in any typed form → 11 digits; e-mails trimmed and
-- lower-cased; a free-text contact classified as e-mail, phone or QQ; a QQ mailbox `<qq>@qq.com`
-- also yields the node `qq:<qq>` (derived row). A WeChat statement line's openid sits on the order
-- it pays (the line's merchant order number brought to the order-number standard by
-- `int_statement_lines`); openids are per app, so the main shop's and the substation's are
-- different node kinds (the CRM stores the main app's). Alipay's masked buyer account
-- (`138****8000`, `abc***@qq.com`) is kept as a weak identifier (`alipay_mask`, not linkable by
-- itself: `int_identity_links` uses it only to point at the one known phone or e-mail it fits).
-- Blocklisted placeholders (seed `identity_blocklist`) and kinds switched off in seed
-- `identity_node_kinds` are kept but not `is_linkable`; an order left with no linkable identifier
-- gets a stand-in node `order:<shop>:<id>`.
--
-- Incremental by record (`record_key`): a run rebuilds the orders its change set names (macro
-- `identifiers_observed_changes`: orders whose staging row changed, and orders a rebuilt statement
-- line pays, before and after), with all their rows at once (the stand-in depends on every
-- identifier of the order); and the substation accounts and CRM members whose fields differ from
-- the rows the table holds for them.
{%- set upstreams = identifiers_observed_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='record_key',
        pre_hook="{{ before_build(['record_key'], ['record_key'],
            identifiers_observed_changes(), identifiers_observed_upstreams()) }}",
        post_hook="{{ after_build(['record_key'], ['record_key'],
            identifiers_observed_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

main_orders as (
    select * from {{ ref('stg_shop__orders') }}
    where
        {{ in_change_set(['order_id'],
            "select order_id from changed where shop = 'main'", upstreams) }}
),

substation_orders as not materialized (
    select * from {{ ref('stg_substation__orders') }}
    where
        {{ in_change_set(['order_id'],
            "select order_id from changed where shop = 'substation'", upstreams) }}
),

-- `not materialized`: each reader scans the table with its own filter instead of sharing a copy
statement_lines as not materialized (
    select * from {{ ref('int_statement_lines') }}
    where
        {{ in_change_set(['shop', 'order_id'],
            'select shop, order_id from changed where order_id is not null', upstreams) }}
),

blocklist as (
    select * from {{ ref('identity_blocklist') }}
),

node_kinds as (
    select * from {{ ref('identity_node_kinds') }}
),

-- raw observations: (system, id_kind, raw_value, node_kind, node_value, record_key, seen_at)
main_emails as (
    select
        'main.orders' as system,  -- noqa: RF04
        'email' as id_kind,
        buyer_email_raw as raw_value,
        'email' as node_kind,
        {{ normalize_email('buyer_email_raw') }} as node_value,
        'main_order:' || order_id as record_key,
        order_sn as source_ref,
        created_at as seen_at,
        'main' as order_shop,
        order_id
    from main_orders
),

-- a contact read by each rule once (`classify_contact` and `normalize_contact` in two steps)
contacts_read as (
    select
        order_id,
        trade_no,
        buyer_contact,
        created_at,
        {{ normalize_email('buyer_contact') }} as contact_email,
        {{ normalize_phone('buyer_contact') }} as contact_phone,
        {{ normalize_qq('buyer_contact') }} as contact_qq
    from substation_orders
),

substation_contacts as (
    select
        'substation.order' as system,  -- noqa: RF04
        'contact' as id_kind,
        buyer_contact as raw_value,
        {{ contact_kind('contact_email', 'contact_phone', 'contact_qq') }} as node_kind,
        coalesce(contact_email, contact_phone, contact_qq) as node_value,
        'sub_order:' || order_id as record_key,
        trade_no as source_ref,
        created_at as seen_at,
        'substation' as order_shop,
        order_id
    from contacts_read
),

substation_owners as (
    select
        'substation.order' as system,  -- noqa: RF04
        'owner' as id_kind,
        cast(owner_user_id as varchar) as raw_value,
        'sub_user' as node_kind,
        cast(owner_user_id as varchar) as node_value,
        'sub_order:' || order_id as record_key,
        trade_no as source_ref,
        created_at as seen_at,
        'substation' as order_shop,
        order_id
    from substation_orders
    where owner_user_id is not null
),

user_fields as (
    select * from ({{ substation_user_fields() }})
    where {{ in_change_set(['record_key'], 'select record_key from changed', upstreams) }}
),

substation_user_ids as (
    select
        'substation.user' as system,  -- noqa: RF04
        id_kind,
        raw_value,
        case id_kind when 'user_id' then 'sub_user' else id_kind end as node_kind,
        case id_kind
            when 'user_id' then raw_value
            when 'email' then {{ normalize_email('raw_value') }}
            when 'phone' then {{ normalize_phone('raw_value') }}
            when 'qq' then {{ normalize_qq('raw_value') }}
        end as node_value,
        record_key,
        source_ref,
        seen_at,
        cast(null as varchar) as order_shop,
        cast(null as bigint) as order_id
    from user_fields
),

crm_fields as (
    select * from ({{ crm_member_fields() }})
    where {{ in_change_set(['record_key'], 'select record_key from changed', upstreams) }}
),

crm_ids as (
    select
        'crm.members' as system,  -- noqa: RF04
        id_kind,
        raw_value,
        case id_kind
            when 'member_id' then 'crm'
            when 'wechat_openid' then 'openid_main'
            else id_kind
        end as node_kind,
        case id_kind
            when 'member_id' then trim(raw_value)
            when 'phone' then {{ normalize_phone('raw_value') }}
            when 'email' then {{ normalize_email('raw_value') }}
            when 'qq' then {{ normalize_qq('raw_value') }}
            when 'wechat_openid' then nullif(trim(raw_value), '')
        end as node_value,
        record_key,
        source_ref,
        seen_at,
        cast(null as varchar) as order_shop,
        cast(null as bigint) as order_id
    from crm_fields
),

wechat_openids as (
    select
        'wechat.bill_lines' as system,  -- noqa: RF04
        'openid' as id_kind,
        buyer_openid as raw_value,
        case shop when 'main' then 'openid_main' else 'openid_sub' end as node_kind,
        buyer_openid as node_value,
        {{ order_record_key('shop', 'order_id') }} as record_key,
        account_key || ':' || channel_txn_no as source_ref,
        completed_at as seen_at,
        shop as order_shop,
        order_id
    from statement_lines
    where
        channel = 'wechat'
        and line_type = 'payment'
        and order_id is not null
        and buyer_openid is not null
),

alipay_accounts as (
    select
        'alipay.statement_lines' as system,  -- noqa: RF04
        'buyer_account_masked' as id_kind,
        buyer_account_masked as raw_value,
        'alipay_mask' as node_kind,
        nullif(lower(trim(buyer_account_masked)), '') as node_value,
        {{ order_record_key('shop', 'order_id') }} as record_key,
        account_key || ':' || channel_txn_no as source_ref,
        completed_at as seen_at,
        shop as order_shop,
        order_id
    from statement_lines
    where
        channel = 'alipay'
        and line_type = 'payment'
        and order_id is not null
        and buyer_account_masked is not null
),

direct as (
    select * from main_emails
    union all
    select * from substation_contacts
    union all
    select * from substation_owners
    union all
    select * from substation_user_ids
    union all
    select * from crm_ids
    union all
    select * from wechat_openids
    union all
    select * from alipay_accounts
),

-- a QQ mailbox is also its QQ number
qq_mailboxes as (
    select
        system,
        'qq_mailbox' as id_kind,
        raw_value,
        'qq' as node_kind,
        {{ qq_of_mailbox('node_value') }} as node_value,
        record_key,
        source_ref,
        seen_at,
        order_shop,
        order_id
    from direct
    where
        node_kind = 'email'
        -- cheap pre-filter: only a `…@qq.com` address can be a QQ mailbox
        and node_value like '%@qq.com'
        and {{ qq_of_mailbox('node_value') }} is not null
),

-- `not materialized` (here and `flagged`): the stand-in check reads the rows a second time rather
-- than DuckDB copying all of them (3.7M for a day of 1M orders) to share them
observed as not materialized (
    select
        direct.*,
        false as is_derived
    from direct
    union all
    select
        qq_mailboxes.*,
        true as is_derived
    from qq_mailboxes
),

flagged as not materialized (
    select
        observed.system,
        observed.id_kind,
        observed.raw_value,
        observed.record_key,
        observed.source_ref,
        observed.seen_at,
        observed.is_derived,
        case when observed.node_value is not null then observed.node_kind end as node_kind,
        observed.node_value,
        {{ identity_node('observed.node_kind', 'observed.node_value') }} as node,
        blocklist.node is not null as is_blocked,
        blocklist.reason as blocked_reason,
        observed.node_value is not null
        and blocklist.node is null
        and coalesce(node_kinds.is_linking, false) as is_linkable,
        observed.order_shop,
        observed.order_id
    from observed
    left join blocklist
        on {{ identity_node('observed.node_kind', 'observed.node_value') }} = blocklist.node
    left join node_kinds on observed.node_kind = node_kinds.node_kind
),

-- orders whose every identifier is unusable still have a buyer: a stand-in for that order alone
-- (grouped by the order's shop and id: one record, and cheaper to group by than its key text)
orders_without_identifier as (
    select
        min(system) as system,  -- noqa: RF04
        min(record_key) as record_key,
        min(source_ref) as source_ref,
        min(seen_at) as seen_at
    from flagged
    where order_id is not null
    group by order_shop, order_id
    having not bool_or(is_linkable)
),

stand_ins as (
    select
        system,
        'order_id' as id_kind,
        source_ref as raw_value,
        record_key,
        source_ref,
        seen_at,
        false as is_derived,
        'order' as node_kind,
        replace(replace(record_key, 'main_order:', 'main:'), 'sub_order:', 'substation:')
            as node_value,
        'order:'
        || replace(replace(record_key, 'main_order:', 'main:'), 'sub_order:', 'substation:')
            as node,
        false as is_blocked,
        cast(null as varchar) as blocked_reason,
        true as is_linkable
    from orders_without_identifier
),

final as (
    select
        system,
        id_kind,
        raw_value,
        record_key,
        source_ref,
        seen_at,
        is_derived,
        node_kind,
        node_value,
        node,
        is_blocked,
        blocked_reason,
        is_linkable,
        {{ this_run() }} as _built_at
    from flagged
    union all
    select
        *,
        {{ this_run() }} as _built_at
    from stand_ins
)

select * from final
