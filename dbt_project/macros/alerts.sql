{#- The anomaly alert rules' settings (the `alerts` variable in dbt_project.yml): one block per
    rule with the role told, the severity and the thresholds. Every alert model reads them here,
    so that a missing setting fails the compilation instead of silently meaning null. -#}

{#- One setting of a rule (`alert_setting('refund_spike', 'z')`), or of all alerts when `key` is
    omitted (`alert_setting('incident_gap_days')`). -#}
{% macro alert_setting(rule, key=none) -%}
    {%- set settings = var('alerts') -%}
    {%- set value = settings[rule] if key is none else settings[rule][key] -%}
    {%- if value is none or value is undefined -%}
        {{ exceptions.raise_compiler_error("alerts: no setting " ~ rule ~ ("" if key is none else "." ~ key)) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#- The rules with their role and severity, as rows (rule, role, severity). (Reads the variable
    itself: a macro's `return` inside another macro would end the outer one.) -#}
{% macro alert_rule_rows() -%}
    {%- set rules = [
        'refund_spike', 'stockout', 'low_days_of_cover', 'unpaid_rate_surge', 'lost_callback',
        'duplicate_payment', 'source_stale', 'quarantine_rate_high',
    ] -%}
    select * from (
        values
        {%- for rule in rules %}
            (
                '{{ rule }}',
                '{{ var('alerts')[rule]['role'] }}',
                '{{ var('alerts')[rule]['severity'] }}'
            ){{ "," if not loop.last }}
        {%- endfor %}
    ) as alert_rules (rule, role, severity)
{%- endmacro %}

{#- A lake dataset (`<system>__<table>`) in words, for alert titles. -#}
{% macro dataset_label(dataset) -%}
    case {{ dataset }}
        when 'shop__orders' then '主站订单'
        when 'shop__goods' then '主站商品'
        when 'shop__goods_group' then '主站商品分类'
        when 'shop__carmis' then '主站卡密库存'
        when 'shop__pays' then '主站支付方式'
        when 'shop__coupons' then '主站优惠券'
        when 'shop__refunds' then '主站退款记录'
        when 'substation__order' then '分站订单'
        when 'substation__commodity' then '分站商品'
        when 'substation__category' then '分站商品分类'
        when 'substation__card' then '分站卡密库存'
        when 'substation__pay' then '分站支付方式'
        when 'substation__user' then '分站用户'
        when 'crm__members' then 'CRM 会员导出'
        when 'alipay__statement_lines' then '支付宝对账单'
        when 'wechat__bill_lines' then '微信支付对账单'
        when 'supplier__card_batches' then '供应商发货单'
        else {{ dataset }}
    end
{%- endmacro %}

{#- The daily signal of a rule that counts one kind of channel-statement exception per account and
    statement day (rpt_channel_reconciliation's `status_reason`): the lost callbacks and the
    duplicate charges are the same count of a different reason. Holds with at least `min_count`;
    `measure` is the count, `volume` the statement's payment lines, and the count and its amount
    are kept as `<name>` and `<name>_fen`. Every statement the reconciliation checked is listed. -#}
{% macro reconciliation_exception_signal(rule, status_reason, name) -%}
{#- (reads the variable itself, as alert_rule_rows does: alert_setting's `return` would end
    this macro) -#}
{%- set min_count = var('alerts')[rule]['min_count'] -%}
with

reconciliation as (
    select * from {{ ref('rpt_channel_reconciliation') }}
),

accounts as (
    select * from {{ ref('dim_channels') }}
),

daily as (
    select
        account_key,
        statement_date as business_date,
        count(*) filter (where item_type = 'payment' and channel_amount_fen is not null)
            as payment_lines,
        count(*) filter (where status_reason = '{{ status_reason }}') as exceptions,
        coalesce(
            sum(channel_amount_fen) filter (where status_reason = '{{ status_reason }}'), 0
        ) as exception_fen
    from reconciliation
    group by account_key, statement_date
),

final as (
    select
        '{{ rule }}' as rule,  -- noqa: RF04
        'channel_account' as entity_type,
        daily.account_key as entity,
        coalesce(accounts.account_name, daily.account_key) as entity_name,
        coalesce(accounts.shop, 'all') as shop,
        daily.business_date,
        cast(daily.exceptions as double) as measure,
        cast({{ min_count }} as double) as baseline,
        daily.exceptions / {{ min_count }} as score,
        cast(daily.payment_lines as bigint) as volume,
        daily.exceptions >= {{ min_count }} as is_firing,
        cast(daily.exceptions as bigint) as {{ name }},
        cast(daily.exception_fen as bigint) as {{ name }}_fen
    from daily
    left join accounts on daily.account_key = accounts.account_key
)

select * from final
{%- endmacro %}
