-- Nothing is lost: every line of every statement in effect is one reconciliation item, with its
-- amount. Returns the lines that are missing or counted twice.
with

lines as (
    select * from {{ ref('int_statement_lines') }}
),

items as (
    select * from {{ ref('rpt_channel_reconciliation') }}
),

counted as (
    select
        lines.line_key,
        count(items.item_id) as times
    from lines
    left join items
        on
            lines.line_key = items.item_id
            and items.channel_amount_fen = abs(lines.amount_fen)
    group by all
)

select * from counted
where times <> 1
