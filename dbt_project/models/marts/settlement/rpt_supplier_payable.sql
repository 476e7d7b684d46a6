-- Supplier payable per supplier and period (docs/metrics.md#supplier-payable): Σ cost of the
-- supplier's keys
-- delivered in the period − Σ cost of its keys charged back in the period (refunds for an invalid
-- key, by refund success day) = the amount payable; per business day (`period = 'day'`) and per
-- calendar month (`period = 'month'`, `period_start` the 1st). A month is `is_closed` once a later
-- day has data: its statement is then final unless late refunds arrive (a new version).
with

lines as not materialized (
    select * from {{ ref('rpt_supplier_payable_lines') }}
),

suppliers as (
    select * from {{ ref('dim_suppliers') }}
),

last_day as (
    select max(business_date) as last_date from lines
),

by_day as (
    select
        supplier_code,
        'day' as period,
        business_date as period_start,
        business_date as period_end,
        sum(keys_delivered) as keys_delivered,
        sum(delivered_cost_fen) as delivered_cost_fen,
        sum(keys_charged_back) as keys_charged_back,
        sum(chargeback_cost_fen) as chargeback_cost_fen
    from lines
    group by all
),

by_month as (
    select
        supplier_code,
        'month' as period,
        cast(date_trunc('month', business_date) as date) as period_start,
        cast(date_trunc('month', business_date) + interval 1 month - interval 1 day as date)
            as period_end,
        sum(keys_delivered) as keys_delivered,
        sum(delivered_cost_fen) as delivered_cost_fen,
        sum(keys_charged_back) as keys_charged_back,
        sum(chargeback_cost_fen) as chargeback_cost_fen
    from lines
    group by all
),

periods as (
    select * from by_day
    union all
    select * from by_month
),

final as (
    select
        periods.supplier_code,
        suppliers.supplier_name,
        periods.period,
        periods.period_start,
        periods.period_end,
        periods.period_start as business_date,
        cast(periods.keys_delivered as bigint) as keys_delivered,
        cast(periods.delivered_cost_fen as bigint) as delivered_cost_fen,
        cast(periods.keys_charged_back as bigint) as keys_charged_back,
        cast(periods.chargeback_cost_fen as bigint) as chargeback_cost_fen,
        cast((periods.delivered_cost_fen - periods.chargeback_cost_fen) as bigint) as payable_fen,
        last_day.last_date > periods.period_end as is_closed
    from periods
    cross join last_day
    left join suppliers on periods.supplier_code = suppliers.supplier_code
)

select * from final
