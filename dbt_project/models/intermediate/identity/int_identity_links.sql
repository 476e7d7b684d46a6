-- The edges of the identity graph, one row per node pair and rule:
-- - `same_record`: two nodes seen on one record (one order, one substation account, one CRM
--   member across all its versions) belong to one person;
-- - `alipay_mask`: an Alipay line's masked buyer account (`138****8000`, `abc***@qq.com`) links
--   the order it pays to the one known phone or e-mail that fits the mask, and only when exactly
--   one fits, that one is not seen on orders paid from another Alipay account, and the order
--   carries no phone that contradicts a phone mask. A mask is weak evidence: with more known
--   numbers a mask fits several and links nothing, which keeps the rule from guessing.
--
-- Shared identifiers: a node seen on records together with more distinct nodes of one kind than
-- one person plausibly has (seed `identity_node_kinds.max_co_nodes`: e.g. an e-mail paid for by
-- two WeChat users, a phone on two substation accounts) is a shared or family identifier; its
-- edges are kept here for audit but not used (`is_used` false), so it cannot chain two people.
--
-- Incremental by node (macro `identity_links_changes`): the edges touching the records that
-- changed are computed again from every record holding one of their nodes (the core); the edges
-- of the nodes next to them that became shared or stopped being shared are rewritten as stored;
-- every edge written gets `is_used` from the neighbour counts of its ends.
{%- set upstreams = identity_links_upstreams() %}
{%- set core = 'select node from changed where in_core' %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['node_a', 'node_b', 'link_rule'],
        pre_hook="{{ before_build(['node'], ['node_a', 'node_b', 'link_rule', 'is_used'],
            identity_links_changes(), identity_links_upstreams(),
            candidates=identity_links_candidates()) }}",
        post_hook="{{ after_build(['node'], ['node_a', 'node_b', 'link_rule', 'is_used'],
            identity_links_upstreams(), candidates=identity_links_candidates()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),

    stored as not materialized (
        select * from {{ this }}
    ),
{% endif %}

-- `not materialized`: each reader scans the table with its own filter instead of sharing a copy
observed as not materialized (
    select * from {{ ref('int_identifiers_observed') }}
),

-- the masks of the core's contacts: every record showing one is looked at again
core_masks as (
    select distinct contact_mask as mask
    from observed
    where contact_mask is not null and {{ in_change_set(['node'], core, upstreams) }}
),

-- the records the edges touching the core come from
core_records as (
    select record_key from observed
    where is_linkable and {{ in_change_set(['node'], core, upstreams) }}
    union
    select record_key from observed
    where
        node_kind = 'alipay_mask' and not is_blocked
        and {{ in_change_set(['node_value'], 'select mask from core_masks', upstreams) }}
),

observed_core as not materialized (
    select * from observed
    where {{ in_change_set(['record_key'], 'select record_key from core_records', upstreams) }}
),

record_nodes as (
    select
        record_key,
        node,
        node_kind,
        min(seen_at) as seen_at
    from observed_core
    where is_linkable
    group by record_key, node, node_kind
),

pairs as (
    select
        a.node as node_a,
        a.node_kind as node_kind_a,
        b.node as node_b,
        b.node_kind as node_kind_b,
        a.record_key,
        greatest(a.seen_at, b.seen_at) as seen_at
    from record_nodes as a
    inner join record_nodes as b
        on a.record_key = b.record_key and a.node < b.node
    where
        {{ in_change_set(['a.node'], core, upstreams) }}
        or {{ in_change_set(['b.node'], core, upstreams) }}
),

edges as (
    select
        node_a,
        node_kind_a,
        node_b,
        node_kind_b,
        'same_record' as link_rule,
        count(*) as n_records,
        min(seen_at) as first_seen_at,
        min(record_key) as first_record_key
    from pairs
    group by node_a, node_kind_a, node_b, node_kind_b
),

-- Alipay masks: which records show which mask
record_masks as (
    select distinct
        record_key,
        node_value as mask,
        seen_at
    from observed_core
    where node_kind = 'alipay_mask' and not is_blocked
),

-- the linkable nodes of the records that show a mask (the only records the mask rules look at)
masked_record_nodes as (
    select
        record_key,
        node,
        node_kind
    from record_nodes
    where record_key in (select record_masks.record_key from record_masks)
),

-- the masks those records show, each with every known phone or e-mail it fits: a mask fits one
-- contact when exactly one known contact prints as it
unique_fits as (
    select
        contact_mask as mask,
        min(node) as node,
        min(node_kind) as node_kind
    from observed
    where
        contact_mask is not null
        and {{ in_change_set(['contact_mask'], 'select mask from record_masks', upstreams) }}
    group by contact_mask
    having count(distinct node) = 1
),

-- a contact seen on an order paid from an Alipay account with another mask is not that account
contradicted as (
    select distinct fits.node
    from unique_fits as fits
    inner join observed as holders
        on fits.node = holders.node
    inner join observed as shown
        on holders.record_key = shown.record_key
    where
        holders.is_linkable
        and shown.node_kind = 'alipay_mask'
        and not shown.is_blocked
        and shown.node_value <> fits.mask
),

-- an order whose own phone does not fit a phone mask was paid from someone else's account
-- (an e-mail mask says nothing about the order's phone: the account shows its e-mail instead)
record_conflicts as (
    select distinct
        record_masks.record_key,
        record_masks.mask
    from record_masks
    inner join observed_core as phones
        on record_masks.record_key = phones.record_key
    where
        phones.node_kind = 'phone'
        and phones.contact_mask is not null
        and record_masks.mask not like '%@%'
        and phones.contact_mask <> record_masks.mask
),

record_anchors as (
    select
        record_key,
        min(node) as node,
        arg_min(node_kind, node) as node_kind
    from masked_record_nodes
    group by record_key
),

mask_links as (
    select
        record_masks.record_key,
        record_masks.seen_at,
        record_anchors.node as record_node,
        record_anchors.node_kind as record_node_kind,
        unique_fits.node as fit_node,
        unique_fits.node_kind as fit_node_kind
    from record_masks
    inner join unique_fits on record_masks.mask = unique_fits.mask
    inner join record_anchors on record_masks.record_key = record_anchors.record_key
    left join contradicted on unique_fits.node = contradicted.node
    left join record_conflicts
        on
            record_masks.record_key = record_conflicts.record_key
            and record_masks.mask = record_conflicts.mask
    where
        contradicted.node is null
        and record_conflicts.record_key is null
        and record_anchors.node <> unique_fits.node
),

mask_edges as (
    select
        least(record_node, fit_node) as node_a,
        case when record_node < fit_node then record_node_kind else fit_node_kind end
            as node_kind_a,
        greatest(record_node, fit_node) as node_b,
        case when record_node < fit_node then fit_node_kind else record_node_kind end
            as node_kind_b,
        'alipay_mask' as link_rule,
        count(*) as n_records,
        min(seen_at) as first_seen_at,
        min(record_key) as first_record_key
    from mask_links
    group by all
),

-- the edges this build computes again: those touching the core
core_edges as (
    select * from edges
    union all
    select * from mask_edges
    where
        {{ in_change_set(['node_a'], core, upstreams) }}
        or {{ in_change_set(['node_b'], core, upstreams) }}
),

{% if is_incremental() %}
    -- the nodes next to the core whose neighbour counts make them shared, or no longer shared:
    -- their edges are rewritten as stored, with `is_used` again (a node's counts are complete
    -- here, as it is in the change set)
    near_edges_before as (
        select
            node_a,
            node_kind_a,
            node_b,
            node_kind_b
        from stored
        where
            link_rule = 'same_record'
            and {{ edges_touching('select node from changed', upstreams) }}
    ),

    near_edges_after as (
        select
            node_a,
            node_kind_a,
            node_b,
            node_kind_b
        from edges
        union all
        select * from near_edges_before
        where not {{ edges_touching(core, upstreams) }}
    ),

    shared_before as (
        {{ identity_shared_nodes('near_edges_before') }}
    ),

    shared_after as (
        {{ identity_shared_nodes('near_edges_after') }}
    ),

    flipped as (
        select coalesce(was.node, now.node) as node
        from shared_before as was
        full join shared_after as now on was.node = now.node
        where
            was.shared_reason is distinct from now.shared_reason
            and coalesce(was.node, now.node) in (select changed.node from changed)
    ),
{% endif %}

-- the edges this build writes: those touching the core, and those touching a node that became
-- shared or stopped being shared
all_edges as (
    select * from core_edges
    {%- if is_incremental() %}
        union all
        select
            node_a,
            node_kind_a,
            node_b,
            node_kind_b,
            link_rule,
            n_records,
            first_seen_at,
            first_record_key
        from stored
        where
            {{ edges_touching('select node from flipped', upstreams) }}
            and not {{ edges_touching(core, upstreams) }}
    {%- endif %}
),

ends as (
    select node_a as node from all_edges
    union
    select node_b as node from all_edges
),

-- every same-record edge of the ends: as computed again where it touches the core, else as stored
same_record_edges as (
    select
        node_a,
        node_kind_a,
        node_b,
        node_kind_b
    from edges
    {%- if is_incremental() %}
        union all
        select
            node_a,
            node_kind_a,
            node_b,
            node_kind_b
        from stored
        where
            link_rule = 'same_record'
            and not {{ edges_touching(core, upstreams) }}
            and (
                stored.node_a in (select ends.node from ends)
                or stored.node_b in (select ends.node from ends)
            )
    {%- endif %}
),

shared as (
    {{ identity_shared_nodes('same_record_edges') }}
),

final as (
    select
        edges.node_a,
        edges.node_kind_a,
        edges.node_b,
        edges.node_kind_b,
        edges.link_rule,
        edges.n_records,
        edges.first_seen_at,
        edges.first_record_key,
        shared_a.node is null and shared_b.node is null as is_used,
        case
            when shared_a.node is not null
                then 'shared ' || edges.node_kind_a || ' (' || shared_a.shared_reason || ')'
            when shared_b.node is not null
                then 'shared ' || edges.node_kind_b || ' (' || shared_b.shared_reason || ')'
        end as unused_reason,
        {{ this_run() }} as _built_at
    from all_edges as edges
    left join shared as shared_a on edges.node_a = shared_a.node
    left join shared as shared_b on edges.node_b = shared_b.node
)

select * from final
