-- Each shop payment method (`pay_id`) with the channel account it settles into: the payment
-- method's code, the account (seed `pay_method_accounts`) and its channel.
{{ config(materialized='view') }}

with

main_pays as (
    select * from {{ ref('stg_shop__pay_methods') }}
),

substation_pays as (
    select * from {{ ref('stg_substation__pay_methods') }}
),

pay_accounts as (
    select * from {{ ref('pay_method_accounts') }}
),

accounts as (
    select * from {{ ref('channel_accounts') }}
),

pay_methods as (
    select
        shop,
        pay_id,
        pay_code
    from main_pays
    union all
    select
        shop,
        pay_id,
        pay_code
    from substation_pays
),

final as (
    select
        pay_methods.shop,
        pay_methods.pay_id,
        pay_methods.pay_code,
        pay_accounts.account_key,
        accounts.channel
    from pay_methods
    left join pay_accounts
        on pay_methods.shop = pay_accounts.shop and pay_methods.pay_code = pay_accounts.pay_code
    left join accounts on pay_accounts.account_key = accounts.account_key
)

select * from final
