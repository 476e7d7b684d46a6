-- Alipay 业务明细 lines: one row per transaction line (payment or refund), signed amounts in fen.
-- `amount_fen` is what moved (payment +, refund −); `fee_fen` is the service fee the channel took
-- (charged +, returned −; Alipay prints it with the opposite sign).
with

source as (
    select * from {{ source('alipay', 'alipay__statement_lines') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by _account, txn_no, business_type, coalesce(refund_batch_no, '')
            order by _extracted_at desc, business_date desc, _row_hash asc
        ) as version_rank
    from source
),

final as (
    select
        'alipay' as channel,
        _account as account_no,
        trim(txn_no) as channel_txn_no,
        trim(merchant_order_no) as merchant_order_no,
        case business_type when '交易' then 'payment' when '退款' then 'refund' end as line_type,
        nullif(trim(refund_batch_no), '') as merchant_refund_no,
        cast(null as varchar) as channel_refund_no,
        product_name,
        counterparty as buyer_account_masked,
        cast(null as varchar) as buyer_openid,
        created_at,
        completed_at,
        merchant_received_fen as amount_fen,
        order_amount_fen,
        -service_fee_fen as fee_fen,
        cast(null as varchar) as fee_rate_text,
        business_date as statement_date,
        _source,
        _extracted_at
    from versions
    where version_rank = 1
)

select * from final
