{%- set s = 'lost_callback' -%}
-- Rule `lost_callback`, its daily signal: per channel account and statement day, the payments the
-- channel statement shows for orders the shop still shows unpaid (rpt_channel_reconciliation,
-- `missing_in_shop` / `lost_callback`): the buyer paid and, until someone acts, got nothing.
-- Every statement the reconciliation checked is listed, with no lost callback or with some.
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
        count(*) filter (where status_reason = 'lost_callback') as lost_callbacks,
        coalesce(
            sum(channel_amount_fen) filter (where status_reason = 'lost_callback'), 0
        ) as lost_callback_fen
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
        cast(daily.lost_callbacks as double) as measure,
        cast({{ alert_setting(s, 'min_count') }} as double) as baseline,
        daily.lost_callbacks / {{ alert_setting(s, 'min_count') }} as score,
        cast(daily.payment_lines as bigint) as volume,
        daily.lost_callbacks >= {{ alert_setting(s, 'min_count') }} as is_firing,
        cast(daily.lost_callbacks as bigint) as lost_callbacks,
        cast(daily.lost_callback_fen as bigint) as lost_callback_fen
    from daily
    left join accounts on daily.account_key = accounts.account_key
)

select * from final
