-- Tie-out (docs/metrics.md#tie-out): each statement's settlement figures equal the sums of its
-- reconciliation items. Returns the statements that do not tie out.
with

items as (
    select * from {{ ref('rpt_channel_reconciliation') }}
),

settlement as (
    select * from {{ ref('rpt_channel_settlement_daily') }}
),

sums as (
    select
        account_key,
        statement_date,
        coalesce(sum(channel_amount_fen) filter (where item_type = 'payment'), 0) as gross_fen,
        coalesce(sum(channel_amount_fen) filter (where item_type = 'refund'), 0) as refunds_fen,
        coalesce(sum(fee_fen), 0) as fee_fen,
        count(channel_amount_fen) as lines,
        count(*) as items,
        count(*) filter (where status <> 'matched') as exceptions
    from items
    group by all
)

select
    settlement.account_key,
    settlement.statement_date
from settlement
full outer join sums
    on
        settlement.account_key = sums.account_key
        and settlement.statement_date = sums.statement_date
where
    settlement.account_key is null
    or settlement.gross_fen <> coalesce(sums.gross_fen, 0)
    or settlement.refunds_fen <> coalesce(sums.refunds_fen, 0)
    or settlement.fee_fen <> coalesce(sums.fee_fen, 0)
    or settlement.payment_lines + settlement.refund_lines <> coalesce(sums.lines, 0)
    or settlement.matched_items + settlement.exception_items <> coalesce(sums.items, 0)
    or settlement.exception_items <> coalesce(sums.exceptions, 0)
    or settlement.net_fen <> settlement.gross_fen - settlement.refunds_fen - settlement.fee_fen
