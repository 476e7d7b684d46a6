-- Every linkable identifier node → the unified user (`user_key`) it belongs to.
--
-- The graph (nodes of `int_identifiers_observed`, used edges of `int_identity_links`) is resolved
-- transitively into connected components by `int_identity_components`. A component's key is
-- `'U' || left(md5(anchor_node), 12)` (macro `user_key_of`), where the anchor is the component's
-- earliest-seen node (first-seen time, then node text). The key is therefore the same in every
-- rebuild, and a user seen before keeps it when later days land; only when new data joins two
-- known users does the later-seen one take the earlier one's key.
with

components as not materialized (
    select * from {{ ref('int_identity_components') }}
),

-- the anchor is the component's earliest-seen node, so its first-seen time is the user's, and
-- its key is computed once per user rather than once per node
anchors as (
    select
        anchor_node,
        {{ user_key_of('anchor_node') }} as user_key,
        first_seen_at as user_first_seen_at
    from components
    where node = anchor_node
),

final as (
    select
        components.node,
        components.node_kind,
        substr(components.node, length(components.node_kind) + 2) as node_value,
        components.first_seen_at,
        anchors.user_key,
        components.anchor_node,
        components.component_size as user_node_count,
        anchors.user_first_seen_at
    from components
    left join anchors on components.anchor_node = anchors.anchor_node
)

select * from final
