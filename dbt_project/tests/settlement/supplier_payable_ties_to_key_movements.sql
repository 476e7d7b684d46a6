-- Tie-out (docs/metrics.md#tie-out): per supplier, the month rows, the day rows and the detail
-- lines carry the same totals, the delivered cost equals Σ cost of the delivered keys in
-- fct_key_movements, and payable = delivered − charged back. Returns the suppliers that do not.
with

payable as (
    select * from {{ ref('rpt_supplier_payable') }}
),

lines as (
    select * from {{ ref('rpt_supplier_payable_lines') }}
),

movements as (
    select * from {{ ref('fct_key_movements') }}
),

by_period as (
    select
        supplier_code,
        sum(delivered_cost_fen) filter (where period = 'month') as month_delivered,
        sum(delivered_cost_fen) filter (where period = 'day') as day_delivered,
        sum(chargeback_cost_fen) filter (where period = 'month') as month_charged_back,
        sum(chargeback_cost_fen) filter (where period = 'day') as day_charged_back,
        count(*) filter (where payable_fen <> delivered_cost_fen - chargeback_cost_fen) as bad_rows
    from payable
    group by all
),

by_line as (
    select
        supplier_code,
        sum(delivered_cost_fen) as delivered,
        sum(chargeback_cost_fen) as charged_back
    from lines
    group by all
),

by_movement as (
    select
        supplier_code,
        sum(cost_fen) as delivered
    from movements
    where movement = 'delivered' and supplier_code is not null
    group by all
)

select coalesce(by_period.supplier_code, by_movement.supplier_code) as supplier_code
from by_period
full outer join by_movement on by_period.supplier_code = by_movement.supplier_code
left join by_line on coalesce(by_period.supplier_code, by_movement.supplier_code) = by_line.supplier_code
where
    by_period.bad_rows is distinct from 0
    or by_period.month_delivered is distinct from by_period.day_delivered
    or by_period.month_delivered is distinct from by_line.delivered
    or by_period.month_delivered is distinct from by_movement.delivered
    or by_period.month_charged_back is distinct from by_period.day_charged_back
    or by_period.month_charged_back is distinct from by_line.charged_back
