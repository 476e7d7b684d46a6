-- The supplier payable's detail (docs/metrics.md#supplier-payable): per supplier, day, batch and
-- SKU, the keys delivered to orders and their cost, and the keys charged back and their cost.
--
-- A charge-back is a successful refund whose reason is an invalid key (卡密无效), dated by the
-- refund's success day. The buyer reports that the order's keys do not work, not which ones: the
-- refund pays back a share of the order, and that share of the order's delivered keys (at least
-- one, at most all; round(refund × keys / order amount)) is charged back, taking the keys in key
-- order (a second such refund of the same order takes the next ones), each at its own batch's
-- unit cost. Keys without a supplier record cannot be charged to a
-- supplier and are left out here (dq_daily counts them).
with

movements as (
    select * from {{ ref('fct_key_movements') }}
),

refunds as (
    select * from {{ ref('fct_refunds') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

delivered as (
    select * from movements
    where movement = 'delivered' and supplier_code is not null
),

invalid_key_refunds as (
    select
        refunds.refund_no,
        refunds.order_no,
        refunds.succeeded_at,
        refunds.succeeded_date,
        least(
            orders.delivered_keys,
            greatest(
                1,
                round(refunds.amount_fen * orders.delivered_keys / nullif(orders.amount_fen, 0))
            )
        ) as keys_refunded
    from refunds
    inner join orders on refunds.order_no = orders.order_no
    where
        refunds.reason_code = 'invalid_key'
        and refunds.refund_status = 'succeeded'
        and orders.delivered_keys > 0
),

refund_key_ranges as (
    -- an order refunded twice for invalid keys charges back its next keys, never the same twice
    select
        *,
        sum(keys_refunded) over (
            partition by order_no
            order by succeeded_at, refund_no
            rows between unbounded preceding and current row
        ) as last_key_rank
    from invalid_key_refunds
),

refunded_orders as (
    select distinct order_no from invalid_key_refunds
),

order_keys as (
    select
        delivered.*,
        row_number() over (partition by delivered.order_no order by delivered.key_id) as key_rank
    from delivered
    inner join refunded_orders on delivered.order_no = refunded_orders.order_no
),

charged_back as (
    select
        order_keys.supplier_code,
        refund_key_ranges.succeeded_date as business_date,
        order_keys.batch_no,
        order_keys.sku_code,
        order_keys.cost_fen
    from refund_key_ranges
    inner join order_keys
        on
            refund_key_ranges.order_no = order_keys.order_no
            and refund_key_ranges.last_key_rank - refund_key_ranges.keys_refunded
            < order_keys.key_rank
            and refund_key_ranges.last_key_rank >= order_keys.key_rank
),

delivered_lines as (
    select
        supplier_code,
        business_date,
        batch_no,
        sku_code,
        count(*) as keys_delivered,
        sum(cost_fen) as delivered_cost_fen
    from delivered
    group by all
),

charged_back_lines as (
    select
        supplier_code,
        business_date,
        batch_no,
        sku_code,
        count(*) as keys_charged_back,
        sum(cost_fen) as chargeback_cost_fen
    from charged_back
    group by all
),

final as (
    select
        coalesce(d.supplier_code, c.supplier_code) as supplier_code,
        coalesce(d.business_date, c.business_date) as business_date,
        coalesce(d.batch_no, c.batch_no) as batch_no,
        coalesce(d.sku_code, c.sku_code) as sku_code,
        coalesce(d.keys_delivered, 0) as keys_delivered,
        cast(coalesce(d.delivered_cost_fen, 0) as bigint) as delivered_cost_fen,
        coalesce(c.keys_charged_back, 0) as keys_charged_back,
        cast(coalesce(c.chargeback_cost_fen, 0) as bigint) as chargeback_cost_fen,
        cast((coalesce(d.delivered_cost_fen, 0) - coalesce(c.chargeback_cost_fen, 0)) as bigint)
            as payable_fen
    from delivered_lines as d
    full outer join charged_back_lines as c
        on
            d.supplier_code = c.supplier_code
            and d.business_date = c.business_date
            and d.batch_no is not distinct from c.batch_no
            and d.sku_code is not distinct from c.sku_code
)

select * from final
