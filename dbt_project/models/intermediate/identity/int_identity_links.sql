-- The edges of the identity graph: two nodes seen on one record (one order, one substation
-- account, one CRM member across all its versions) belong to one person. One row per node pair.
--
-- Shared identifiers: a node seen together with more distinct nodes of one kind than one person
-- plausibly has (seed `identity_node_kinds.max_co_nodes`: e.g. an e-mail paid for by two WeChat
-- users, a phone on two substation accounts) is a shared or family identifier; its edges are kept
-- here for audit but not used (`is_used` false), so it cannot chain two people into one.
with

observed as (
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
        min(seen_at) as seen_at,
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
        greatest(a.seen_at, b.seen_at) as seen_at,
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
        count(*) as n_records,
        min(seen_at) as first_seen_at,
        min(record_key) as first_record_key,
    from pairs
    group by node_a, node_kind_a, node_b, node_kind_b
),

neighbours as (
    select
        node_a as node,
        node_kind_b as neighbour_kind,
        node_b as neighbour,
    from edges
    union all
    select
        node_b as node,
        node_kind_a as neighbour_kind,
        node_a as neighbour,
    from edges
),

shared_nodes as (
    select
        neighbours.node,
        count(distinct neighbours.neighbour) || ' ' || neighbours.neighbour_kind || ' > '
        || node_kinds.max_co_nodes as shared_reason,
    from neighbours
    inner join node_kinds on neighbours.neighbour_kind = node_kinds.node_kind
    group by neighbours.node, neighbours.neighbour_kind, node_kinds.max_co_nodes
    having count(distinct neighbours.neighbour) > node_kinds.max_co_nodes
),

shared as (
    select
        node,
        string_agg(shared_reason, ', ') as shared_reason,
    from shared_nodes
    group by node
),

final as (
    select
        edges.node_a,
        edges.node_kind_a,
        edges.node_b,
        edges.node_kind_b,
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
    from edges
    left join shared as shared_a on edges.node_a = shared_a.node
    left join shared as shared_b on edges.node_b = shared_b.node
)

select * from final
