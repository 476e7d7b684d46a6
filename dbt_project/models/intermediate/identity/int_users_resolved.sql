-- Every linkable identifier node → the unified user (`user_key`) it belongs to.
--
-- The graph (nodes of `int_identifiers_observed`, used edges of `int_identity_links`) is resolved
-- transitively into connected components by `int_identity_components`. A component's key is
-- `'U' || left(md5(anchor_node), 12)` (macro `user_key_of`), where the anchor is the component's
-- earliest-seen node (first-seen time, then node text). The key is therefore the same in every
-- rebuild, and a user seen before keeps it when later days land; only when new data joins two
-- known users does the later-seen one take the earlier one's key.
with

components as (
    select * from {{ ref('int_identity_components') }}
),

final as (
    select
        node,
        node_kind,
        substr(node, length(node_kind) + 2) as node_value,
        first_seen_at,
        {{ user_key_of('anchor_node') }} as user_key,
        anchor_node,
        component_size as user_node_count,
        min(first_seen_at) over (partition by anchor_node) as user_first_seen_at
    from components
)

select * from final
