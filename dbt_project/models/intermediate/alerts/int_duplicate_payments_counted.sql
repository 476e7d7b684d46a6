{%- set s = 'duplicate_payment' -%}
-- Rule `duplicate_payment`, its daily signal: per channel account and statement day, the further
-- charges of an order the channel had already been paid for (rpt_channel_reconciliation,
-- `duplicate_in_channel` / `charged_again`): money to pay back. Every statement the
-- reconciliation checked is listed, with no duplicate charge or with some.
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
        count(*) filter (where status_reason = 'charged_again') as duplicate_charges,
        coalesce(
            sum(channel_amount_fen) filter (where status_reason = 'charged_again'), 0
        ) as duplicate_fen
    from reconciliation
    group by account_key, statement_date
),

final as (
    select
        '{{ s }}' as rule,  -- noqa: RF04
        'channel_account' as entity_type,
        daily.account_key as entity,
        coalesce(accounts.account_name, daily.account_key) as entity_name,
        coalesce(accounts.shop, 'all') as shop,
        daily.business_date,
        cast(daily.duplicate_charges as double) as measure,
        cast({{ alert_setting(s, 'min_count') }} as double) as baseline,
        daily.duplicate_charges / {{ alert_setting(s, 'min_count') }} as score,
        cast(daily.payment_lines as bigint) as volume,
        daily.duplicate_charges >= {{ alert_setting(s, 'min_count') }} as is_firing,
        cast(daily.duplicate_charges as bigint) as duplicate_charges,
        cast(daily.duplicate_fen as bigint) as duplicate_fen
    from daily
    left join accounts on daily.account_key = accounts.account_key
)

select * from final
