-- Settlement per channel account and statement day (docs/metrics.md#channel-settlement): gross
-- receipts,
-- refunds, the channel's fee as stated and as expected from the account's contracted rate, and net
-- settlement = gross − refunds − fees (the fee as stated: it is what the channel keeps), with the
-- reconciliation's item counts per status and the totals the statement states about itself.
-- `is_tied_out`: the lines add up to the statement's own footer or summary block; a report is
-- published only when it is true (and the dbt tests below re-check it on every build).
with

items as (
    select * from {{ ref('rpt_channel_reconciliation') }}
),

accounts as not materialized (
    select * from {{ ref('dim_channels') }}
),

statement_files as (
    select * from {{ ref('stg_lake__statement_files') }}
),

stated as (
    select
        accounts.account_key,
        statement_files.statement_date,
        count(*) as statement_files,
        cast(sum(statement_files.stated_lines) as bigint) as stated_lines,
        cast(sum(statement_files.stated_gross_fen) as bigint) as stated_gross_fen,
        cast(sum(statement_files.stated_refunds_fen) as bigint) as stated_refunds_fen,
        cast(sum(statement_files.stated_fee_fen) as bigint) as stated_fee_fen
    from statement_files
    inner join accounts
        on
            statement_files.channel = accounts.channel
            and statement_files.account_no = accounts.statement_account_no
    group by all
),

figures as (
    select
        account_key,
        statement_date,
        count(*) filter (where item_type = 'payment' and channel_amount_fen is not null)
            as payment_lines,
        cast(coalesce(sum(channel_amount_fen) filter (where item_type = 'payment'), 0) as bigint)
            as gross_fen,
        count(*) filter (where item_type = 'refund' and channel_amount_fen is not null)
            as refund_lines,
        cast(coalesce(sum(channel_amount_fen) filter (where item_type = 'refund'), 0) as bigint)
            as refunds_fen,
        cast(coalesce(sum(fee_fen), 0) as bigint) as fee_fen,
        cast(coalesce(sum(expected_fee_fen), 0) as bigint) as expected_fee_fen,
        count(*) filter (where item_type = 'payment' and shop_amount_fen is not null)
            as shop_payments,
        cast(coalesce(sum(shop_amount_fen) filter (where item_type = 'payment'), 0) as bigint)
            as shop_gross_fen,
        count(*) filter (where item_type = 'refund' and shop_amount_fen is not null)
            as shop_refunds,
        cast(coalesce(sum(shop_amount_fen) filter (where item_type = 'refund'), 0) as bigint)
            as shop_refunds_fen,
        count(*) filter (where status = 'matched') as matched_items,
        count(*) filter (where status = 'amount_mismatch') as amount_mismatch_items,
        count(*) filter (where status = 'missing_in_channel') as missing_in_channel_items,
        count(*) filter (where status = 'missing_in_shop') as missing_in_shop_items,
        count(*) filter (where status = 'duplicate_in_channel') as duplicate_in_channel_items
    from items
    group by all
),

joined as (
    select
        accounts.channel,
        stated.account_key,
        accounts.account_name,
        accounts.shop,
        stated.statement_date,
        accounts.fee_rate_bp,
        coalesce(figures.payment_lines, 0) as payment_lines,
        coalesce(figures.gross_fen, 0) as gross_fen,
        coalesce(figures.refund_lines, 0) as refund_lines,
        coalesce(figures.refunds_fen, 0) as refunds_fen,
        coalesce(figures.fee_fen, 0) as fee_fen,
        coalesce(figures.expected_fee_fen, 0) as expected_fee_fen,
        coalesce(figures.shop_payments, 0) as shop_payments,
        coalesce(figures.shop_gross_fen, 0) as shop_gross_fen,
        coalesce(figures.shop_refunds, 0) as shop_refunds,
        coalesce(figures.shop_refunds_fen, 0) as shop_refunds_fen,
        coalesce(figures.matched_items, 0) as matched_items,
        coalesce(figures.amount_mismatch_items, 0) as amount_mismatch_items,
        coalesce(figures.missing_in_channel_items, 0) as missing_in_channel_items,
        coalesce(figures.missing_in_shop_items, 0) as missing_in_shop_items,
        coalesce(figures.duplicate_in_channel_items, 0) as duplicate_in_channel_items,
        stated.statement_files,
        stated.stated_lines,
        stated.stated_gross_fen,
        stated.stated_refunds_fen,
        stated.stated_fee_fen
    from stated
    inner join accounts on stated.account_key = accounts.account_key
    left join figures
        on
            stated.account_key = figures.account_key
            and stated.statement_date = figures.statement_date
),

final as (
    select
        channel,
        account_key,
        account_name,
        shop,
        statement_date,
        statement_date as business_date,
        fee_rate_bp,
        payment_lines,
        gross_fen,
        refund_lines,
        refunds_fen,
        fee_fen,
        expected_fee_fen,
        fee_fen - expected_fee_fen as fee_difference_fen,
        gross_fen - refunds_fen - fee_fen as net_fen,
        shop_payments,
        shop_gross_fen,
        shop_refunds,
        shop_refunds_fen,
        matched_items,
        amount_mismatch_items,
        missing_in_channel_items,
        missing_in_shop_items,
        duplicate_in_channel_items,
        amount_mismatch_items + missing_in_channel_items + missing_in_shop_items
        + duplicate_in_channel_items as exception_items,
        statement_files,
        stated_lines,
        stated_gross_fen,
        stated_refunds_fen,
        stated_fee_fen,
        gross_fen = stated_gross_fen
        and refunds_fen = stated_refunds_fen
        and (stated_lines is null or payment_lines + refund_lines = stated_lines)
        and (stated_fee_fen is null or fee_fen = stated_fee_fen) as is_tied_out
    from joined
)

select * from final
