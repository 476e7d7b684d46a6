{%- set s = 'refund_spike' -%}
-- Refund-spike incidents consolidated so that one problem raises one alert. A bad supplier makes
-- its own rate spike, and with it the rates of the categories and SKUs it supplies: a category or
-- SKU incident of which one supplier explains at least `absorb_share` of the excess refunds, while
-- that supplier's own incident overlaps it (within the incident gap), belongs to the supplier's
-- incident; a category incident one spiking SKU explains belongs to that SKU's incident (or to
-- the supplier's that took the SKU's). One row per incident that stands, with the ones it took
-- (`affected`), its causes and its main cause: the supplier that explains at least
-- `absorb_share` of the excess (a supplier's own incident: the supplier itself) with its batches
-- that explain most, else the supplier, batch, channel or latency band whose share of the excess
-- most exceeds its share of the orders.
with

incidents as (
    select * from {{ ref('int_alert_incidents_grouped') }}
),

explained as not materialized (
    select * from {{ ref('int_refund_spikes_explained') }}
),

spikes as (
    select * from incidents
    where rule = '{{ s }}'
),

supplier_spikes as (
    select * from spikes
    where entity_type = 'supplier'
),

top_causes as (
    -- the supplier (for a category or SKU spike) or SKU (for a category spike) that explains most
    select
        alert_id,
        dimension,
        cause_value,
        excess_share
    from explained
    where
        dimension in ('supplier', 'sku')
        and cause_rank = 1
        and excess_share >= {{ alert_setting(s, 'absorb_share') }}
),

by_supplier as (
    select
        spikes.alert_id,
        supplier_spikes.alert_id as absorbed_by
    from spikes
    inner join top_causes
        on spikes.alert_id = top_causes.alert_id and top_causes.dimension = 'supplier'
    inner join supplier_spikes
        on
            top_causes.cause_value = supplier_spikes.entity
            and supplier_spikes.first_day
            <= spikes.last_day + {{ alert_setting('incident_gap_days') }} + 1
            and supplier_spikes.last_day
            >= spikes.first_day - {{ alert_setting('incident_gap_days') }} - 1
    where spikes.entity_type in ('category', 'sku')
    qualify row_number() over (
        partition by spikes.alert_id order by supplier_spikes.first_day
    ) = 1
),

sku_spikes as (
    select
        spikes.alert_id,
        spikes.entity,
        spikes.first_day,
        spikes.last_day,
        coalesce(by_supplier.absorbed_by, spikes.alert_id) as owner_id
    from spikes
    left join by_supplier on spikes.alert_id = by_supplier.alert_id
    where spikes.entity_type = 'sku'
),

by_sku as (
    select
        spikes.alert_id,
        sku_spikes.owner_id as absorbed_by
    from spikes
    inner join top_causes
        on spikes.alert_id = top_causes.alert_id and top_causes.dimension = 'sku'
    inner join sku_spikes
        on
            top_causes.cause_value = sku_spikes.entity
            and sku_spikes.first_day
            <= spikes.last_day + {{ alert_setting('incident_gap_days') }} + 1
            and sku_spikes.last_day
            >= spikes.first_day - {{ alert_setting('incident_gap_days') }} - 1
    anti join by_supplier on spikes.alert_id = by_supplier.alert_id
    where spikes.entity_type = 'category'
    qualify row_number() over (partition by spikes.alert_id order by sku_spikes.first_day) = 1
),

absorptions as (
    select * from by_supplier
    union all
    select * from by_sku
),

standing as (
    select spikes.*
    from spikes
    anti join absorptions on spikes.alert_id = absorptions.alert_id
),

affected as (
    select
        absorptions.absorbed_by as alert_id,
        cast(
            to_json(list(
                json_object(
                    'entity_type', spikes.entity_type,
                    'entity', spikes.entity,
                    'entity_name', spikes.entity_name,
                    'first_day', spikes.first_day,
                    'last_day', spikes.last_day
                )
                order by spikes.entity_type, spikes.entity
            )) as varchar
        ) as affected
    from absorptions
    inner join spikes on absorptions.alert_id = spikes.alert_id
    group by absorptions.absorbed_by
),

affected_entities as (
    select distinct
        absorptions.absorbed_by as alert_id,
        spikes.entity_type,
        spikes.entity,
        spikes.entity_name
    from absorptions
    inner join spikes on absorptions.alert_id = spikes.alert_id
),

affected_names as (
    select
        alert_id,
        string_agg(
            case entity_type when 'category' then '类目' else '商品' end || ' ' || entity_name,
            '、'
            order by entity_type, entity
        ) as affected_text
    from affected_entities
    group by alert_id
),

listed_causes as (
    select * from explained
    where
        dimension in ('supplier', 'batch', 'channel', 'latency')
        and excess_refunds > 0
        and cause_rank <= {{ alert_setting(s, 'max_causes') }}
),

causes as (
    select
        alert_id,
        cast(
            to_json(list(
                json_object(
                    'dimension', dimension,
                    'value', cause_value,
                    'label', cause_label,
                    'excess', round(excess_refunds, 2),
                    'share', round(excess_share, 4),
                    'orders', paid_orders,
                    'refunds', refunded_orders,
                    'order_share', round(order_share, 4)
                )
                order by
                    list_position(['supplier', 'batch', 'channel', 'latency'], dimension),
                    cause_rank
            )) as varchar
        ) as causes
    from listed_causes
    group by alert_id
),

totals as (
    select
        alert_id,
        sum(paid_orders) as paid_orders,
        sum(refunded_orders) as refunded_orders,
        sum(excess_refunds) as excess_refunds
    from explained
    where dimension = 'supplier'
    group by alert_id
),

main_supplier as (
    select
        alert_id,
        dimension,
        cause_value,
        cause_label,
        excess_share,
        refund_rate
    from explained
    where
        dimension = 'supplier'
        and cause_rank = 1
        and cause_value <> 'none'
        and excess_share >= {{ alert_setting(s, 'absorb_share') }}
),

main_other as (
    select
        alert_id,
        dimension,
        cause_value,
        cause_label,
        excess_share,
        refund_rate
    from explained
    where
        dimension in ('supplier', 'batch', 'channel', 'latency')
        and excess_refunds > 0
        and excess_share > order_share
    qualify row_number() over (
        partition by alert_id
        order by excess_share - order_share desc, dimension asc, cause_value asc
    ) = 1
),

main_causes as (
    select * from main_supplier
    union all
    select main_other.*
    from main_other
    anti join main_supplier on main_other.alert_id = main_supplier.alert_id
),

supplier_batches as (
    -- the main supplier's batches that explain most of the excess
    select
        main_causes.alert_id,
        string_agg(
            explained.cause_value
            || '（' || cast(round(100 * explained.excess_share) as integer) || '%）',
            '、'
            order by explained.cause_rank
        ) as batch_text
    from main_causes
    inner join explained
        on
            main_causes.alert_id = explained.alert_id
            and explained.dimension = 'batch'
            and explained.excess_refunds > 0
            and explained.cause_rank <= 3
            and starts_with(explained.cause_label, main_causes.cause_value || ' ')
    where main_causes.dimension = 'supplier'
    group by main_causes.alert_id
),

final as (
    select
        standing.alert_id,
        cast(totals.paid_orders as bigint) as paid_orders,
        cast(totals.refunded_orders as bigint) as refunded_orders,
        totals.excess_refunds,
        main_causes.dimension as main_cause_dimension,
        main_causes.cause_value as main_cause_value,
        main_causes.excess_share as main_cause_share,
        case main_causes.dimension
            when 'supplier' then '供应商 '
            when 'batch' then '卡密批次 '
            when 'channel' then '支付渠道 '
            when 'latency' then '发货时长 '
        end
        || main_causes.cause_label
        || ' 解释了 ' || cast(round(100 * main_causes.excess_share) as integer) || '% 的超额退款'
        || '（其订单退款率 ' || printf('%.1f', 100 * main_causes.refund_rate) || '%）'
        || coalesce('，集中在批次 ' || supplier_batches.batch_text, '')
        || '。' as main_cause,
        causes.causes,
        affected.affected,
        affected_names.affected_text
    from standing
    left join totals on standing.alert_id = totals.alert_id
    left join main_causes on standing.alert_id = main_causes.alert_id
    left join supplier_batches on standing.alert_id = supplier_batches.alert_id
    left join causes on standing.alert_id = causes.alert_id
    left join affected on standing.alert_id = affected.alert_id
    left join affected_names on standing.alert_id = affected_names.alert_id
)

select * from final
