-- Each buyer's first paid business day (unified `user_key`, either shop): what makes a buyer
-- "new" on a day (docs/metrics.md#sales). Kept as a table so a day's KPIs read it instead of
-- scanning every paid order of the history again.
--
-- Incremental by buyer: a run rebuilds the buyers whose orders `fct_orders` rebuilt (its change
-- log holds each order's buyer and payment day before and after, so a buyer an order left, or
-- two buyers merged into one, are both seen). The log of this model holds each rebuilt buyer's
-- first paid day before and after, so the daily KPIs know which days gained or lost a new buyer.
{%- set upstreams = ['fct_orders'] %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='user_key',
        pre_hook="{{ before_build(['user_key'], ['user_key', 'first_paid_date'],
            buyer_first_paid_changes(), ['fct_orders']) }}",
        post_hook="{{ after_build(['user_key'], ['user_key', 'first_paid_date'],
            ['fct_orders']) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

orders as not materialized (
    select * from {{ ref('fct_orders') }}
    where
        is_paid
        and user_key is not null
        and {{ in_change_set(['user_key'], 'select user_key from changed', upstreams) }}
),

final as (
    select
        user_key,
        min(paid_date) as first_paid_date,
        {{ this_run() }} as _built_at
    from orders
    group by user_key
)

select * from final
