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
with

-- `not materialized`: each reader scans the table with its own filter instead of sharing a copy
observed as not materialized (
    select * from {{ ref('int_identifiers_observed') }}
),

node_kinds as (
    select * from {{ ref('identity_node_kinds') }}
),

record_nodes as (
    select
        record_key,
        node,
        node_kind,
        min(seen_at) as seen_at
    from observed
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
    from observed
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

-- every known phone and e-mail (once) with the mask Alipay would print for it
known_contacts as (
    select distinct
        node,
        node_kind
    from record_nodes
    where node_kind in ('phone', 'email')
),

node_masks as (
    select
        node,
        node_kind,
        {{ alipay_mask('node_kind', 'substr(node, length(node_kind) + 2)') }} as mask
    from known_contacts
),

unique_fits as (
    select
        mask,
        min(node) as node,
        min(node_kind) as node_kind
    from node_masks
    group by mask
    having count(*) = 1
),

-- a node seen on an order paid from an Alipay account with another mask is not that account
contradicted as (
    select distinct node_masks.node
    from node_masks
    inner join masked_record_nodes
        on node_masks.node = masked_record_nodes.node
    inner join record_masks
        on
            masked_record_nodes.record_key = record_masks.record_key
            and node_masks.mask <> record_masks.mask
),

-- an order whose own phone does not fit a phone mask was paid from someone else's account
-- (an e-mail mask says nothing about the order's phone: the account shows its e-mail instead)
record_conflicts as (
    select distinct
        record_masks.record_key,
        record_masks.mask
    from record_masks
    inner join masked_record_nodes
        on record_masks.record_key = masked_record_nodes.record_key
    inner join node_masks on masked_record_nodes.node = node_masks.node
    where
        node_masks.node_kind = 'phone'
        and record_masks.mask not like '%@%'
        and node_masks.mask <> record_masks.mask
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

-- edges are distinct node pairs: every row is another neighbour
neighbours as (
    select
        node_a as node,
        node_kind_b as neighbour_kind
    from edges
    union all
    select
        node_b as node,
        node_kind_a as neighbour_kind
    from edges
),

neighbour_counts as (
    select
        node,
        neighbour_kind,
        count(*) as n_neighbours
    from neighbours
    group by node, neighbour_kind
),

shared_nodes as (
    select
        neighbour_counts.node,
        neighbour_counts.n_neighbours || ' ' || neighbour_counts.neighbour_kind || ' > '
        || node_kinds.max_co_nodes as shared_reason
    from neighbour_counts
    inner join node_kinds on neighbour_counts.neighbour_kind = node_kinds.node_kind
    where neighbour_counts.n_neighbours > node_kinds.max_co_nodes
),

shared as (
    select
        node,
        string_agg(shared_reason, ', ' order by shared_reason) as shared_reason
    from shared_nodes
    group by node
),

all_edges as (
    select * from edges
    union all
    select * from mask_edges
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
        end as unused_reason
    from all_edges as edges
    left join shared as shared_a on edges.node_a = shared_a.node
    left join shared as shared_b on edges.node_b = shared_b.node
)

select * from final
