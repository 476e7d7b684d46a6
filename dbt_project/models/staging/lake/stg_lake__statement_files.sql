-- One row per channel statement file in effect (landed, not superseded by a corrected re-send),
-- with the totals the file states about itself. The parser refuses a file whose lines do not sum
-- to these totals; settlement checks its reports against them once more, after every model in
-- between.
with

source as (
    select * from {{ source('lake', 'ingest_state') }}
    where dataset in ('alipay__statement_lines', 'wechat__bill_lines')
),

files as (
    select
        source.dataset,
        source.business_date,
        unnest(
            from_json(
                source.files,
                '[{"file": "VARCHAR", "status": "VARCHAR", "account": "VARCHAR", "rows": "BIGINT",
                   "sha256": "VARCHAR", "footer": {"lines": "BIGINT", "payment_lines": "BIGINT",
                   "payment_fen": "BIGINT", "refund_lines": "BIGINT", "refund_fen": "BIGINT",
                   "fee_fen": "BIGINT"}}]'
            )
        ) as f
    from source
),

final as (
    select
        case files.dataset
            when 'alipay__statement_lines' then 'alipay'
            when 'wechat__bill_lines' then 'wechat'
        end as channel,
        files.f.account as account_no,
        files.business_date as statement_date,
        files.f.file as source_file,
        files.f.sha256 as file_sha256,
        files.f.rows as rows_in_file,
        files.f.footer.lines as stated_lines,
        files.f.footer.payment_lines as stated_payment_lines,
        files.f.footer.payment_fen as stated_gross_fen,
        files.f.footer.refund_lines as stated_refund_lines,
        files.f.footer.refund_fen as stated_refunds_fen,
        files.f.footer.fee_fen as stated_fee_fen
    from files
    where files.f.status = 'landed'
)

select * from final
