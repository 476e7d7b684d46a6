-- The keys each main-shop order delivered: one row per order and key (the order's `info`, one key
-- per line, as its keyed hash). The main shop links a sold key to its order only through this
-- text, so the card-key ledger looks keys up here instead of splitting every order's text again.
--
-- Incremental by order: a run rebuilds the main-shop orders `int_orders_unified` rebuilt. Its
-- change log holds each order's keys before and after, so the ledger learns which keys changed
-- hands.
{%- set upstreams = ['int_orders_unified'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        pre_hook="{{ before_build(['order_id'], ['order_id', 'key_text'],
            main_key_deliveries_changes(), ['int_orders_unified']) }}",
        post_hook="{{ after_build(['order_id'], ['order_id', 'key_text'],
            ['int_orders_unified']) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

orders as (
    select * from {{ ref('int_orders_unified') }}
    where
        shop = 'main'
        and delivered_keys_text is not null
        and {{ in_change_set(['order_id'], 'select order_id from changed', upstreams) }}
),

final as (
    select distinct
        order_id,
        unnest(string_split(delivered_keys_text, chr(10))) as key_text,
        {{ this_run() }} as _built_at
    from orders
)

select * from final
