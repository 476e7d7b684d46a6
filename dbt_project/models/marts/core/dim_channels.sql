-- The payment channel accounts the shops settle through (seed `channel_accounts`), with the shop
-- payment methods that pay into each.
with

accounts as (
    select * from {{ ref('channel_accounts') }}
),

pay_accounts as (
    select * from {{ ref('pay_method_accounts') }}
),

methods as (
    select
        account_key,
        list(pay_code order by pay_code) as pay_codes
    from pay_accounts
    group by account_key
),

final as (
    select
        accounts.account_key,
        accounts.channel,
        case accounts.channel when 'alipay' then '支付宝' when 'wechat' then '微信支付' end
            as channel_name,
        accounts.shop,
        accounts.account_name,
        cast(accounts.merchant_id as varchar) as merchant_id,
        cast(accounts.statement_account_no as varchar) as statement_account_no,
        cast(accounts.fee_rate_bp as integer) as fee_rate_bp,
        accounts.fee_rate_bp / 10000.0 as fee_rate,
        accounts.statement_layout,
        coalesce(methods.pay_codes, []) as pay_codes
    from accounts
    left join methods on accounts.account_key = methods.account_key
)

select * from final
