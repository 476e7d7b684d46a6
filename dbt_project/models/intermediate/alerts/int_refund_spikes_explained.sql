-- The root-cause breakdown of every refund-spike incident (rule `refund_spike`): the orders of the
-- spiking entity (supplier, category or SKU) paid in the incident's windows (from `window_days` − 1
-- days before its first day to its last day), counted against the baseline rate before the
-- incident (that of its first day), so that excess refunds = refunded orders − baseline rate ×
-- paid orders. The excess is split by the supplier of the delivered key, the key batch (of the
-- order's first key), the payment channel, the delivery-latency band, and the SKU and category;
-- each value's `share` of the excess is how far it explains the spike (within a dimension the
-- shares add up to 1: it is the excess that would be gone had that value refunded at the
-- baseline rate), and its `order_share` the part of the orders it had. Only the orders of the
-- incidents' days are read.
with

incidents as (
    select * from {{ ref('int_alert_incidents_grouped') }}
),

rates as (
    select * from {{ ref('int_refund_rates_scored') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

movements as not materialized (
    select * from {{ ref('fct_key_movements') }}
),

products as not materialized (
    select * from {{ ref('dim_products') }}
),

suppliers as (
    select * from {{ ref('dim_suppliers') }}
),

spans as (
    -- the payment days an incident covers: the windows of its days, from the first window's
    -- first day to its last day, with the baseline rate before it (that of its first day)
    select
        incidents.alert_id,
        incidents.entity_type,
        incidents.entity,
        incidents.first_day - {{ alert_setting('refund_spike', 'window_days') }} + 1 as span_start,
        incidents.last_day as span_end,
        rates.baseline as baseline_rate
    from incidents
    inner join rates
        on
            incidents.entity_type = rates.entity_type
            and incidents.entity = rates.entity
            and incidents.first_day = rates.business_date
    where incidents.rule = 'refund_spike'
),

bounds as (
    select
        min(span_start) as first_paid_date,
        max(span_end) as last_paid_date
    from spans
),

paid_orders as (
    select
        orders.order_no,
        orders.paid_date,
        orders.has_refund,
        coalesce(orders.supplier_code, 'none') as supplier_code,
        coalesce(orders.sku_code, 'unmapped') as sku_code,
        coalesce(products.category_code, 'unmapped') as category_code,
        coalesce(orders.channel, 'unknown') as channel,
        case
            when orders.is_manual then 'manual'
            when orders.delivery_seconds is null then 'undelivered'
            when orders.delivery_seconds <= 30 then 'within_30s'
            when orders.delivery_seconds <= 600 then 'within_10m'
            else 'over_10m'
        end as latency_band
    from orders
    inner join bounds
        on orders.paid_date between bounds.first_paid_date and bounds.last_paid_date
    left join products on orders.sku_code = products.sku_code
    where orders.is_paid
),

order_levels as (
    unpivot (
        select
            order_no,
            paid_date,
            supplier_code as supplier,
            category_code as category,
            sku_code as sku
        from paid_orders
    )
    on supplier, category, sku
    into name entity_type value entity
),

spike_orders as (
    select
        spans.alert_id,
        spans.baseline_rate,
        order_levels.order_no
    from order_levels
    inner join spans
        on
            order_levels.entity_type = spans.entity_type
            and order_levels.entity = spans.entity
            and order_levels.paid_date between spans.span_start and spans.span_end
),

delivered_keys as (
    -- a key is delivered on its order's payment day or after (the day bound prunes the ledger)
    select
        movements.order_no,
        movements.batch_no,
        cast(split_part(movements.key_id, '-', 2) as bigint) as key_seq
    from movements
    cross join bounds
    semi join spike_orders on movements.order_no = spike_orders.order_no
    where
        movements.movement = 'delivered'
        and movements.business_date >= bounds.first_paid_date
),

order_batches as (
    select
        order_no,
        arg_min(batch_no, key_seq) as batch_no
    from delivered_keys
    group by order_no
),

detailed as (
    select
        spike_orders.alert_id,
        spike_orders.baseline_rate,
        paid_orders.has_refund,
        paid_orders.supplier_code,
        coalesce(order_batches.batch_no, 'none') as batch_no,
        paid_orders.channel,
        paid_orders.latency_band,
        paid_orders.sku_code,
        paid_orders.category_code
    from spike_orders
    inner join paid_orders on spike_orders.order_no = paid_orders.order_no
    left join order_batches on spike_orders.order_no = order_batches.order_no
),

cause_dims as (
    unpivot (
        select
            alert_id,
            baseline_rate,
            has_refund,
            supplier_code as supplier,
            batch_no as batch,
            channel,
            latency_band as latency,
            sku_code as sku,
            category_code as category
        from detailed
    )
    on supplier, batch, channel, latency, sku, category
    into name dimension value cause_value
),

by_value as (
    select
        alert_id,
        dimension,
        cause_value,
        count(*) as paid_orders,
        count(*) filter (where has_refund) as refunded_orders,
        sum(baseline_rate) as expected_refunds
    from cause_dims
    group by alert_id, dimension, cause_value
),

totals as (
    select
        alert_id,
        dimension,
        sum(paid_orders) as total_orders,
        sum(refunded_orders - expected_refunds) as total_excess
    from by_value
    group by alert_id, dimension
),

batches as (
    select
        movements.batch_no,
        any_value(movements.supplier_code) as supplier_code,
        min(movements.business_date) as received_date
    from movements
    semi join by_value
        on movements.batch_no = by_value.cause_value and by_value.dimension = 'batch'
    where movements.movement = 'received'
    group by movements.batch_no
),

categories as (
    select distinct
        category_code,
        category_name
    from products
),

labelled as (
    select
        by_value.*,
        case by_value.dimension
            when 'supplier'
                then by_value.cause_value || coalesce(' ' || suppliers.supplier_name, '')
            when 'batch'
                then
                    coalesce(batches.supplier_code || ' ', '') || '批次 ' || by_value.cause_value
                    || coalesce('（' || strftime(batches.received_date, '%m-%d') || ' 到货）', '')
            when 'channel'
                then
                    case by_value.cause_value
                        when 'alipay' then '支付宝'
                        when 'wechat' then '微信支付'
                        else by_value.cause_value
                    end
            when 'latency'
                then
                    case by_value.cause_value
                        when 'manual' then '人工处理'
                        when 'undelivered' then '未发货'
                        when 'within_30s' then '30 秒内发货'
                        when 'within_10m' then '30 秒至 10 分钟发货'
                        when 'over_10m' then '超过 10 分钟发货（等待补货）'
                    end
            when 'sku' then by_value.cause_value || coalesce(' ' || products.canonical_name, '')
            when 'category'
                then by_value.cause_value || coalesce(' ' || categories.category_name, '')
        end as cause_label
    from by_value
    left join suppliers
        on by_value.dimension = 'supplier' and by_value.cause_value = suppliers.supplier_code
    left join batches on by_value.dimension = 'batch' and by_value.cause_value = batches.batch_no
    left join products on by_value.dimension = 'sku' and by_value.cause_value = products.sku_code
    left join categories
        on by_value.dimension = 'category' and by_value.cause_value = categories.category_code
),

final as (
    select
        labelled.alert_id,
        labelled.dimension,
        labelled.cause_value,
        coalesce(labelled.cause_label, labelled.cause_value) as cause_label,
        cast(labelled.paid_orders as bigint) as paid_orders,
        cast(labelled.refunded_orders as bigint) as refunded_orders,
        labelled.refunded_orders / labelled.paid_orders as refund_rate,
        labelled.expected_refunds,
        labelled.refunded_orders - labelled.expected_refunds as excess_refunds,
        (labelled.refunded_orders - labelled.expected_refunds)
        / nullif(totals.total_excess, 0) as excess_share,
        labelled.paid_orders / totals.total_orders as order_share,
        row_number() over (
            partition by labelled.alert_id, labelled.dimension
            order by labelled.refunded_orders - labelled.expected_refunds desc, labelled.cause_value
        ) as cause_rank
    from labelled
    inner join totals
        on labelled.alert_id = totals.alert_id and labelled.dimension = totals.dimension
)

select * from final
