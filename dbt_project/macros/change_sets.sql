{#- Each incremental model's change set: the keys a run rebuilds, from what its inputs changed
    since its last build (macros/changes.sql). One macro per model, used by the model's body and
    both its hooks, so the three always agree. -#}

{#- int_orders_unified, by (shop, order_id): orders whose staging row changed, and orders whose
    payment method or substation product now maps differently (the reference tables are small
    snapshots that can change under old orders). -#}
{% macro orders_unified_changes() -%}
    {{ changed_since('stg_shop__orders', "'main' as shop, order_id") }}
    union
    {{ changed_since('stg_substation__orders', "'substation' as shop, order_id") }}
    {%- if is_incremental() %}
    union
    select stored.shop, stored.order_id
    from {{ this }} as stored
    left join {{ ref('int_order_pay_accounts') }} as pay
        on stored.shop = pay.shop and stored.pay_id = pay.pay_id
    left join {{ ref('stg_substation__commodities') }} as commodities
        on stored.shop = 'substation' and stored.listing_id = commodities.commodity_id
    where
        stored.pay_code is distinct from pay.pay_code
        or stored.account_key is distinct from pay.account_key
        or stored.channel is distinct from pay.channel
        or (
            stored.shop = 'substation'
            and stored.is_manual is distinct from coalesce(commodities.is_manual, false)
        )
    {%- endif %}
{%- endmacro %}

{#- int_order_payments, by (shop, order_id): orders that changed, and the orders a rebuilt
    statement line pays, before and after. -#}
{% macro order_payments_changes() -%}
    {{ changed_since('int_orders_unified', 'shop, order_id') }}
    union
    select shop, order_id from ({{ changed_since('int_statement_lines', 'shop, order_id') }})
    where order_id is not null
{%- endmacro %}
