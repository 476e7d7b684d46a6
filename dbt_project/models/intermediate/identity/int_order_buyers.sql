-- The buyer of every order of both shops as a unified user: one row per order (`shop`,
-- `order_id` as in staging) with its `user_key` and the identifier node it was resolved through.
--
-- The buyer node is the order's most telling linkable identifier (seed
-- `identity_node_kinds.buyer_priority`: the substation account, then the WeChat openid, phone, QQ,
-- e-mail); an order with none has its own stand-in node, so `user_key` is never null.
with

main_orders as (
    select * from {{ ref('stg_shop__orders') }}
),

substation_orders as (
    select * from {{ ref('stg_substation__orders') }}
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

users as (
    select * from {{ ref('int_users_resolved') }}
),

node_kinds as (
    select * from {{ ref('identity_node_kinds') }}
),

orders as (
    select
        'main' as shop,
        order_id,
        'main_order:' || order_id as record_key
    from main_orders
    union all
    select
        'substation' as shop,
        order_id,
        'sub_order:' || order_id as record_key
    from substation_orders
),

order_nodes as (
    select
        observed.record_key,
        observed.node,
        node_kinds.buyer_priority
    from observed
    inner join node_kinds on observed.node_kind = node_kinds.node_kind
    where observed.is_linkable and observed.record_key like '%order:%'
),

-- the least (buyer_priority, node) of the order, as one aggregate rather than a window
buyer_nodes as (
    select
        record_key,
        min(struct_pack(buyer_priority, node)).node as buyer_node
    from order_nodes
    group by record_key
),

final as (
    select
        orders.shop,
        orders.order_id,
        users.user_key,
        buyer_nodes.buyer_node,
        users.node_kind as buyer_node_kind
    from orders
    left join buyer_nodes on orders.record_key = buyer_nodes.record_key
    left join users on buyer_nodes.buyer_node = users.node
)

select * from final
