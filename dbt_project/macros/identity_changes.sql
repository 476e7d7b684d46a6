{#- The identity chain's change sets (docs/incremental.md, "The identity graph"): which nodes,
    orders and users a run rebuilds, from what the records of int_identifiers_observed changed.
    Each is used by its model's body and both its hooks (macros/changes.sql). -#}

{#- A filter of the graph's edges (`node_a`, `node_b`): those touching a node of `nodes`, or
    every edge under `rebuild_all(upstreams)`. -#}
{% macro edges_touching(nodes, upstreams) -%}
    {%- if is_incremental() -%}
        ({{ rebuild_all(upstreams) }} or node_a in ({{ nodes }}) or node_b in ({{ nodes }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro identity_links_upstreams() -%}
    {{ return(['int_identifiers_observed']) }}
{%- endmacro %}

{#- The rows of int_identifiers_observed that moved since this model's last build (`record_key`,
    `node`): a record's node that appeared, left, or was seen at another time. A record rebuilt
    as it was moves nothing. -#}
{% macro observed_moved() -%}
    {{ changed_rows('int_identifiers_observed', 'record_key, node', 'seen_at') }}
{%- endmacro %}

{#- int_identity_links, by node (`node`, `in_core`). The core: the nodes of the records that
    moved (before and after), and every contact whose Alipay mask one of them has (a new or
    removed contact decides whether a mask still fits exactly one). Every edge touching the core
    is computed again from all records holding a core node or showing a core mask. The rest of
    the set: the nodes next to the core (on those records, or on a stored edge touching it),
    whose edges stay but become used or unused where such a node's neighbour count makes it
    shared or no longer shared. -#}
{% macro identity_links_changes() -%}
    {%- set observed = ref('int_identifiers_observed') -%}
    {%- set kind = "split_part(node, ':', 1)" -%}
    with
    moved as (
        {{ observed_moved() }}
    ),
    -- every node of a record that moved (its anchor and mask rules depend on all of them), and
    -- the nodes it lost
    touched as (
        select node from moved where node is not null
        union
        select node from {{ observed }}
        where is_linkable and record_key in (select record_key from moved)
    ),
    touched_masks as (
        select distinct {{ alipay_mask(kind, "substr(node, strpos(node, ':') + 1)") }} as mask
        from touched
        where {{ kind }} in ('phone', 'email')
    ),
    core as (
        select node from touched
        union
        select node from {{ observed }}
        where contact_mask in (select mask from touched_masks)
    ),
    core_records as (
        select record_key from {{ observed }}
        where is_linkable and node in (select node from core)
        union
        select record_key from {{ observed }}
        where
            node_kind = 'alipay_mask' and not is_blocked
            and node_value in (select mask from touched_masks)
    ),
    near as (
        select node from core
        union
        select node from {{ observed }}
        where is_linkable and record_key in (select record_key from core_records)
        union
        select node_b from {{ this }} where node_a in (select node from core)
        union
        select node_a from {{ this }} where node_b in (select node from core)
    )
    select node, node in (select node from core) as in_core from near
{%- endmacro %}

{#- int_identity_links' hooks: the edges touching the core, which the build computes again (the
    edges next to it that it rewrites as stored are not removed when left out). -#}
{% macro identity_links_candidates() -%}
    {{ edges_touching('select node from ' ~ change_set() ~ ' where in_core',
        identity_links_upstreams()) }}
{%- endmacro %}

{% macro identity_components_upstreams() -%}
    {{ return(['int_identifiers_observed', 'int_identity_links']) }}
{%- endmacro %}

{#- int_identity_components, by node: the components (as stored) of every node that appeared,
    left or was seen at another time on a record, or that ends an edge that appeared, left or
    became used or unused; under `rebuild_all`, every node. `run_at` tells the Python body the
    run's time for `_built_at`. -#}
{% macro identity_components_changes() -%}
    {%- set upstreams = identity_components_upstreams() -%}
    {%- set edge = 'node_a, node_b, link_rule' -%}
    with
    edges_moved as (
        {{ changed_rows('int_identity_links', edge, 'is_used') }}
    ),
    touched as (
        select node from ({{ observed_moved() }})
        union
        select node_a from edges_moved
        union
        select node_b from edges_moved
    ),
    scope as (
        select node from touched
        union
        select node from {{ this }}
        where anchor_node in (
            select anchor_node from {{ this }} where node in (select node from touched)
        )
        union
        select node from {{ ref('int_identifiers_observed') }}
        where is_linkable and {{ rebuild_all(upstreams) }}
    )
    select node, {{ this_run() }} as run_at from scope
{%- endmacro %}

{#- int_users_resolved, by node: the nodes whose component, anchor or first-seen time moved when
    their component was resolved again, and every node of a component whose anchor is among
    theirs (before or after: the user's first-seen time is its anchor's). -#}
{% macro users_resolved_changes() -%}
    {%- set values = 'anchor_node, component_size, first_seen_at' -%}
    with moved as (
        {{ changed_rows('int_identity_components', 'node', values) }}
    )
    select node from moved
    union
    select node from {{ ref('int_identity_components') }}
    where anchor_node in (
        select anchor_node from ({{ changed_since('int_identity_components', 'node, anchor_node') }})
        where node in (select node from moved)
    )
{%- endmacro %}

{% macro order_buyers_upstreams() -%}
    {{ return(['int_identifiers_observed', 'int_users_resolved']) }}
{%- endmacro %}

{#- int_order_buyers, by order: the orders whose identifiers were rebuilt (their record), and the
    orders whose buyer node's user changed (the identity change log: `int_users_resolved`'s). -#}
{% macro order_buyers_changes() -%}
    select
        case when record_key like 'main_order:%' then 'main' else 'substation' end as shop,
        cast(split_part(record_key, ':', 2) as bigint) as order_id
    from ({{ changed_since('int_identifiers_observed', 'record_key') }})
    where record_key like 'main_order:%' or record_key like 'sub_order:%'
    {%- if is_incremental() %}
    union
    select shop, order_id from {{ this }}
    where buyer_node in (select node from ({{ changed_rows('int_users_resolved', 'node', 'user_key') }}))
    {%- endif %}
{%- endmacro %}

{% macro dim_users_upstreams() -%}
    {{ return(['int_identifiers_observed', 'int_users_resolved', 'int_order_buyers']) }}
{%- endmacro %}

{#- dim_users, by user: the users a node joined or left (before and after), the users an order
    was bought by (before and after), and the users of nodes whose observations changed. -#}
{% macro dim_users_changes() -%}
    select user_key from ({{ changed_since('int_users_resolved', 'node, user_key') }})
    where node in (select node from ({{ changed_rows('int_users_resolved', 'node', 'user_key') }}))
    union
    select user_key from ({{ changed_since('int_order_buyers', 'shop, order_id, user_key') }})
    where (shop, order_id) in (
        select shop, order_id
        from ({{ changed_rows('int_order_buyers', 'shop, order_id', 'user_key') }})
    )
    union
    select user_key from {{ ref('int_users_resolved') }}
    where node in (select node from ({{ changed_since('int_identifiers_observed', 'node') }}))
{%- endmacro %}
