-- Anomaly alerts: one row per incident of an alert rule — consecutive business days on which the
-- rule held for the same entity (`incident_gap_days` allowed between them) — with who is told
-- (`role`), how loud (`severity`), whether it is still open on the evaluated day, a title that
-- stays the same while the incident goes on, a summary with the numbers, and for refund spikes the
-- root-cause breakdown (`causes`) and main cause. Refund spikes are consolidated: a category or
-- SKU spike a spiking supplier explains is listed under the supplier's alert (see
-- int_refund_spikes_consolidated). `metric_value`, `baseline_value` and `score` are those of the
-- incident's peak day (its highest score).
with

incidents as (
    select * from {{ ref('int_alert_incidents_grouped') }}
),

refund_spikes as (
    select * from {{ ref('int_refund_spikes_consolidated') }}
),

rules as (
    {{ alert_rule_rows() }}
),

standing as (
    -- every incident but the refund spikes another refund-spike alert took
    select
        incidents.*,
        refund_spikes.paid_orders,
        refund_spikes.refunded_orders,
        refund_spikes.excess_refunds,
        refund_spikes.main_cause_dimension,
        refund_spikes.main_cause_value,
        refund_spikes.main_cause_share,
        refund_spikes.main_cause,
        refund_spikes.causes,
        refund_spikes.affected,
        refund_spikes.affected_text
    from incidents
    left join refund_spikes on incidents.alert_id = refund_spikes.alert_id
    where incidents.rule <> 'refund_spike' or refund_spikes.alert_id is not null
),

described as (
    select
        *,
        case shop when 'main' then '主站' when 'substation' then '分站' else '' end as shop_label,
        case
            when entity_type = 'shop_sku' then split_part(entity, '/', 2) else entity
        end as entity_code,
        strftime(first_day, '%Y-%m-%d') || ' 至 ' || strftime(last_day, '%Y-%m-%d') || ' 有 '
        || firing_days || ' 天触发。' as period_text,
        '峰值 ' || strftime(peak_day, '%Y-%m-%d') || '：' as peak_text
    from standing
),

texts as (
    select
        *,
        case rule
            when 'refund_spike'
                then
                    '退款率突增：'
                    || case entity_type
                        when 'supplier' then '供应商 '
                        when 'category' then '类目 '
                        else '商品 '
                    end
                    || entity || ' ' || entity_name
            when 'stockout'
                then
                    '缺货：' || shop_label || '商品 ' || entity_code || ' ' || entity_name
                    || ' 付款后未能及时发货'
            when 'low_days_of_cover'
                then
                    '库存告急：' || shop_label || '商品 ' || entity_code || ' ' || entity_name
                    || ' 可售天数不足'
            when 'unpaid_rate_surge' then '未支付订单率突增：' || entity_name
            when 'lost_callback' then '支付回调丢失（掉单）：' || entity_name
            when 'duplicate_payment' then '重复扣款：' || entity_name
            when 'source_stale' then '数据源停止到达：' || entity_name || '（' || entity || '）'
            when 'quarantine_rate_high'
                then '隔离率超限：' || entity_name || '（' || entity || '）'
        end as title,
        period_text || peak_text
        || case rule
            when 'refund_spike'
                then
                    '退款率 ' || printf('%.1f%%', 100 * metric_value)
                    || '，基线 ' || printf('%.1f%%', 100 * baseline_value)
                    || '，稳健 z ' || printf('%.1f', score)
                    || '，付款订单 ' || peak_volume || ' 笔。事件期间付款订单 '
                    || coalesce(paid_orders, 0) || ' 笔、退款 ' || coalesce(refunded_orders, 0)
                    || ' 笔，超出基线 ' || printf('%.0f', coalesce(excess_refunds, 0)) || ' 笔。'
                    || coalesce('波及：' || affected_text || '。', '')
            when 'stockout'
                then
                    printf('%.0f', metric_value) || ' 笔付款订单 10 分钟内未发货（当日付款 '
                    || peak_volume || ' 笔）；事件期间共 ' || printf('%.0f', total_measure)
                    || ' 笔。'
            when 'low_days_of_cover'
                then
                    '可售天数 ' || printf('%.2f', metric_value) || ' 天（阈值 '
                    || printf('%.1f', baseline_value) || ' 天），近期日均发货 '
                    || printf('%.1f', peak_volume / 7) || ' 个。'
            when 'unpaid_rate_surge'
                then
                    '未支付率 ' || printf('%.1f%%', 100 * metric_value)
                    || '，基线 ' || printf('%.1f%%', 100 * baseline_value)
                    || '，稳健 z ' || printf('%.1f', score)
                    || '，当日创建订单 ' || peak_volume || ' 笔。'
            when 'lost_callback'
                then
                    printf('%.0f', metric_value) || ' 笔渠道已收款而店铺仍显示未支付（当日对账单收款 '
                    || peak_volume || ' 笔）；事件期间共 ' || printf('%.0f', total_measure)
                    || ' 笔。'
            when 'duplicate_payment'
                then
                    printf('%.0f', metric_value) || ' 笔重复扣款（当日对账单收款 '
                    || peak_volume || ' 笔）；事件期间共 ' || printf('%.0f', total_measure)
                    || ' 笔，需退回。'
            when 'source_stale'
                then
                    '已 ' || printf('%.0f', metric_value) || ' 个营业日没有新数据（允许 '
                    || printf('%.0f', baseline_value) || ' 天）。'
            when 'quarantine_rate_high'
                then
                    '隔离率 ' || printf('%.2f%%', 100 * metric_value) || '（阈值 '
                    || printf('%.1f%%', 100 * baseline_value) || '），读取 ' || peak_volume
                    || ' 行。'
        end as summary  -- noqa: RF04
    from described
),

final as (
    select
        texts.alert_id,
        texts.rule,  -- noqa: RF04
        texts.entity_type,
        texts.entity,
        texts.entity_name,
        texts.shop,
        rules.role,
        rules.severity,
        texts.first_day,
        texts.last_day,
        texts.evaluated_day,
        texts.is_open,
        case when not texts.is_open then texts.last_day + 1 end as resolved_day,
        texts.title,
        texts.summary,
        texts.main_cause,
        texts.causes,
        texts.metric_value,
        texts.baseline_value,
        texts.score,
        texts.peak_day,
        texts.peak_volume,
        texts.firing_days,
        texts.main_cause_dimension,
        texts.main_cause_value,
        texts.main_cause_share,
        texts.affected
    from texts
    inner join rules on texts.rule = rules.rule
)

select * from final
