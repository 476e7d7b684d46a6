-- WeChat Pay trade-bill lines (both layouts): one row per payment or refund line, signed amounts
-- in fen. `amount_fen` is what moved (payment +, refund −); `fee_fen` is the fee the channel took
-- (charged +, returned −).
with

source as (
    select * from {{ source('wechat', 'wechat__bill_lines') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by mch_id, wx_order_no, trade_state, coalesce(wx_refund_no, '')
            order by _extracted_at desc, business_date desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        'wechat' as channel,
        _account as account_no,
        trim(wx_order_no) as channel_txn_no,
        trim(merchant_order_no) as merchant_order_no,
        case trade_state when 'SUCCESS' then 'payment' when 'REFUND' then 'refund' end
            as line_type,
        nullif(nullif(trim(merchant_refund_no), ''), '0') as merchant_refund_no,
        nullif(nullif(trim(wx_refund_no), ''), '0') as channel_refund_no,
        product_name,
        cast(null as varchar) as buyer_account_masked,
        nullif(trim(openid), '') as buyer_openid,
        traded_at as created_at,
        traded_at as completed_at,
        case
            when trade_state = 'REFUND' then -refund_amount_fen
            else settlement_amount_fen
        end as amount_fen,
        coalesce(order_amount_fen, settlement_amount_fen) as order_amount_fen,
        fee_fen,
        fee_rate as fee_rate_text,
        business_date as statement_date,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
