-- The order-number standard as a lookup: every order number any system uses (the shops' own
-- numbers, the merchant order numbers of the statements with their integration affixes, the
-- main shop's refund records) → the standard `order_no` and the shop order it names.
--
-- Incremental by number (`source_system`, `_number_key`): a run rebuilds the numbers its change
-- set names (macro `order_numbers_changes`: the numbers of orders and statement lines that
-- changed, before and after, and of the refunds landed or naming an order that changed).
{%- set upstreams = order_numbers_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source_system', '_number_key'],
        pre_hook="{{ before_build(['source_system', '_number_key'], ['source_system', '_number_key'],
            order_numbers_changes(), order_numbers_upstreams()) }}",
        post_hook="{{ after_build(['source_system', '_number_key'], ['source_system', '_number_key'],
            order_numbers_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

-- every order: the refunds' numbers join them
all_orders as not materialized (
    select * from {{ ref('int_orders_unified') }}
),

orders as (
    select * from all_orders
    where
        {{ in_change_set(
            ["all_orders.shop || '.orders'", "coalesce(all_orders.native_order_no, '')"],
            'select source_system, _number_key from changed', upstreams) }}
),

lines as (
    select * from {{ ref('int_statement_lines') }}
    where
        {{ in_change_set(['account_key', "coalesce(merchant_order_no, '')"],
            'select source_system, _number_key from changed', upstreams) }}
),

shop_refunds as (
    select * from {{ ref('stg_shop__refunds') }}
    where
        {{ in_change_set(["'main.refunds'", "coalesce(order_sn, '')"],
            'select source_system, _number_key from changed', upstreams) }}
),

-- `union all`: each part is distinct already and the parts never share a `source_system`, so a
-- `union` would hash every row of the three for duplicates that cannot exist
numbers as (
    select
        shop || '.orders' as source_system,
        native_order_no as source_order_no,
        order_no,
        shop,
        order_id,
        'native' as match_rule
    from orders
    union all
    select distinct
        account_key as source_system,
        merchant_order_no as source_order_no,
        order_no,
        shop,
        order_id,
        match_rule
    from lines
    union all
    select distinct
        'main.refunds' as source_system,
        shop_refunds.order_sn as source_order_no,
        orders.order_no,
        orders.shop,
        orders.order_id,
        'native' as match_rule
    from shop_refunds
    left join all_orders as orders
        on
            orders.shop = 'main'
            and {{ order_no("'main'", 'shop_refunds.order_sn') }} = orders.order_no
),

final as (
    select
        *,
        coalesce(source_order_no, '') as _number_key,
        {{ this_run() }} as _built_at
    from numbers
)

select * from final
