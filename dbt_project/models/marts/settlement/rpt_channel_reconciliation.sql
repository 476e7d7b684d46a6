-- The channel statement check (docs/metrics.md#channel-reconciliation): one row per statement line
-- and per shop payment or refund, a matched pair being one row, each with its status:
--
--   matched               both sides, same amount
--   amount_mismatch       both sides, different amounts
--   missing_in_channel    the shop recorded it; the statement it belongs to has no line for it
--   missing_in_shop       a statement line the shop has no record of (`lost_callback`: the order
--                         exists but the shop never heard of the payment; `unknown_order`: no such
--                         order; `order_quarantined`: the shop's row was refused at ingestion)
--   duplicate_in_channel  a further charge (or refund) of the same order (refund) in the channel
--
-- Matching: a payment line belongs to the order its merchant order number gives (standardised,
-- known affixes removed: int_statement_lines); the order's primary transaction (the one the shop
-- recorded, else the first) is its payment, any further payment line a duplicate charge. A refund
-- line matches the shop's refund of the same refund number (the main shop); the substation keeps no
-- refund
-- records, so its refund lines are checked against their order only (`no_shop_refund_record`).
-- A staff test order is refused at ingestion on purpose; its 0.01 yuan payment is `matched`
-- (`test_order`) against the refused row, or a `lost_callback` when that row shows it unpaid.
--
-- Day boundary: a line sits in the statement that holds it, whatever day it completed on (a
-- payment at 23:59:58 may be in the next day's file: `day_boundary`). A shop payment or refund no
-- statement holds belongs to the statement of its own day, or, when it happened in the last
-- `statement_boundary_s` seconds of the day, to the next day's statement: the neighbouring file is
-- where it would be. Only statements that have landed are checked; shop records waiting for theirs
-- are not listed yet.
--
-- Incremental by statement day: a run rebuilds the days its change set names (macro
-- `reconciliation_days_changes`: the statements it landed, the days of lines, orders and refunds
-- whose checked figures changed, and the days of the lines ranked with them).
{%- set upstreams = reconciliation_upstreams() %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        pre_hook="{{ before_build(['business_date'], ['business_date'],
            reconciliation_days_changes(), reconciliation_upstreams()) }}",
        post_hook="{{ after_build(['business_date'], ['business_date'],
            reconciliation_upstreams()) }}",
        on_schema_change='fail',
    )
}}
with

{% if is_incremental() %}
    changed as (
        select * from {{ change_set() }}
    ),
{% endif %}

all_lines as not materialized (
    select * from {{ ref('int_statement_lines') }}
),

-- the lines of the days rebuilt
lines as not materialized (
    select * from all_lines
    where {{ in_change_set(['statement_date'], 'select business_date from changed', upstreams) }}
),

orders as not materialized (
    select * from {{ ref('fct_orders') }}
),

refunds as not materialized (
    select * from {{ ref('fct_refunds') }}
),

accounts as not materialized (
    select * from {{ ref('dim_channels') }}
),

statement_files as (
    select * from {{ ref('stg_lake__statement_files') }}
),

refused_orders as (
    -- a refused order row: the shop has the order, the lake could not take it (a staff test order
    -- is refused on purpose: its 0.01 yuan payment is accounted for)
    {{ refused_orders() }}
),

statements_landed as (
    select distinct
        accounts.account_key,
        statement_files.statement_date
    from statement_files
    inner join accounts
        on
            statement_files.channel = accounts.channel
            and statement_files.account_no = accounts.statement_account_no
),

payment_lines as (
    select
        lines.*,
        orders.order_no as shop_order_no,
        orders.is_paid_in_shop,
        orders.payment_txn_no,
        orders.amount_fen as shop_order_fen,
        orders.paid_at as shop_paid_at,
        refused_orders.is_test_order as is_refused_test_order,
        refused_orders.is_paid_in_record as is_refused_paid
    from lines
    left join orders on lines.shop = orders.shop and lines.order_id = orders.order_id
    left join refused_orders
        on
            orders.order_no is null
            and lines.shop = refused_orders.shop
            and lines.order_no = refused_orders.order_no
    where lines.line_type = 'payment'
),

payment_items as (
    select
        line_key as item_id,
        channel,
        account_key,
        shop,
        statement_date,
        'payment' as item_type,
        case
            when shop_order_no is null
                then {{ unmatched_payment_reason('is_refused_test_order', 'is_refused_paid') }}
            when coalesce(channel_txn_no <> payment_txn_no, true) then 'charged_again'
            when not coalesce(is_paid_in_shop, false) then 'lost_callback'
            when amount_fen <> shop_order_fen then 'amount_differs'
            when statement_date <> completed_date then 'day_boundary'
            else 'as_expected'
        end as status_reason,
        coalesce(shop_order_no, order_no) as order_no,
        merchant_order_no,
        channel_txn_no,
        cast(null as varchar) as refund_no,
        case
            when is_paid_in_shop and channel_txn_no = payment_txn_no then shop_order_fen
        end as shop_amount_fen,
        amount_fen as channel_amount_fen,
        fee_fen,
        case
            when is_paid_in_shop and channel_txn_no = payment_txn_no then shop_paid_at
        end as shop_at,
        completed_at as channel_at,
        _source as statement_file
    from payment_lines
),

-- the refund lines of the days rebuilt, ranked among every line of their refunds (any day)
ranked_refund_lines as (
    select all_lines.* from all_lines
    where
        all_lines.line_type = 'refund'
        and {{ in_change_set([refund_line_group('all_lines')],
            "select " ~ refund_line_group('lines') ~ " from lines where lines.line_type = 'refund'",
            upstreams) }}
),

refund_lines as (
    select
        ranked.*,
        refunds.refund_no as shop_refund_no,
        refunds.refund_status as shop_refund_status,
        refunds.amount_fen as shop_refund_fen,
        refunds.succeeded_at as shop_refunded_at,
        orders.order_no as shop_order_no,
        orders.amount_fen as shop_order_fen,
        row_number() over (
            partition by {{ refund_line_group('ranked') }}
            order by ranked.completed_at, ranked.line_key
        ) as refund_line_rank
    from ranked_refund_lines as ranked
    left join refunds
        on
            ranked.shop = refunds.shop
            and refunds.recorded_by = 'shop'
            and ranked.merchant_refund_no = refunds.refund_no
    left join orders on ranked.shop = orders.shop and ranked.order_id = orders.order_id
),

refund_items as (
    select
        line_key as item_id,
        channel,
        account_key,
        shop,
        statement_date,
        'refund' as item_type,
        case
            when refund_line_rank > 1 then 'refunded_again'
            when shop_order_no is null then 'unknown_order'
            when shop = 'substation' and -amount_fen > shop_order_fen then 'exceeds_order'
            when shop = 'substation' then 'no_shop_refund_record'
            when shop_refund_no is null then 'unknown_refund'
            when shop_refund_status <> 'succeeded' then 'not_succeeded_in_shop'
            when -amount_fen <> shop_refund_fen then 'amount_differs'
            when statement_date <> completed_date then 'day_boundary'
            else 'as_expected'
        end as status_reason,
        coalesce(shop_order_no, order_no) as order_no,
        merchant_order_no,
        channel_txn_no,
        coalesce(merchant_refund_no, channel_refund_no) as refund_no,
        case
            when refund_line_rank = 1 and shop_refund_status = 'succeeded' then shop_refund_fen
        end as shop_amount_fen,
        -amount_fen as channel_amount_fen,
        fee_fen,
        case
            when refund_line_rank = 1 and shop_refund_status = 'succeeded' then shop_refunded_at
        end as shop_at,
        completed_at as channel_at,
        _source as statement_file
    from refund_lines
    where {{ in_change_set(['statement_date'], 'select business_date from changed', upstreams) }}
),

unseen_payments as (
    -- paid in the shop, in no statement
    select
        'shop:' || orders.order_no as item_id,
        orders.channel,
        orders.account_key,
        orders.shop,
        orders.paid_at as happened_at,
        'payment' as item_type,
        orders.order_no,
        cast(null as varchar) as refund_no,
        orders.amount_fen as shop_amount_fen
    from orders
    where
        orders.is_paid_in_shop
        and orders.payment_txn_no is null
        and (
            {{ in_change_set(['orders.paid_date'],
                'select business_date from changed', upstreams) }}
            or {{ in_change_set(['orders.paid_date + 1'],
                'select business_date from changed', upstreams) }}
        )
),

unseen_refunds as (
    -- refunded in the (main) shop, in no statement
    select
        'shop-refund:' || refunds.refund_no as item_id,
        refunds.channel,
        refunds.account_key,
        refunds.shop,
        refunds.succeeded_at as happened_at,
        'refund' as item_type,
        refunds.order_no,
        refunds.refund_no,
        refunds.amount_fen as shop_amount_fen
    from refunds
    left join all_lines as refund_lines_any
        on
            refunds.shop = refund_lines_any.shop
            and refund_lines_any.line_type = 'refund'
            and refunds.refund_no = refund_lines_any.merchant_refund_no
    where
        refunds.recorded_by = 'shop'
        and refunds.refund_status = 'succeeded'
        and refund_lines_any.line_key is null
        and (
            {{ in_change_set(['refunds.succeeded_date'],
                'select business_date from changed', upstreams) }}
            or {{ in_change_set(['refunds.succeeded_date + 1'],
                'select business_date from changed', upstreams) }}
        )
),

unseen_records as (
    select * from unseen_payments
    union all
    select * from unseen_refunds
),

unseen as (
    select
        *,
        {{ business_date('happened_at') }}
        + case
            when
                86400
                - cast(epoch(timezone('{{ var("business_tz") }}', happened_at)) as bigint) % 86400
                <= {{ var('statement_boundary_s') }}
                then 1
            else 0
        end as statement_date
    from unseen_records
),

unseen_items as (
    select
        unseen.item_id,
        unseen.channel,
        unseen.account_key,
        unseen.shop,
        cast(unseen.statement_date as date) as statement_date,
        unseen.item_type,
        'not_in_statement' as status_reason,
        unseen.order_no,
        cast(null as varchar) as merchant_order_no,
        cast(null as varchar) as channel_txn_no,
        unseen.refund_no,
        unseen.shop_amount_fen,
        cast(null as bigint) as channel_amount_fen,
        cast(null as bigint) as fee_fen,
        unseen.happened_at as shop_at,
        cast(null as timestamptz) as channel_at,
        cast(null as varchar) as statement_file
    from unseen
    inner join statements_landed
        on
            unseen.account_key = statements_landed.account_key
            and cast(unseen.statement_date as date) = statements_landed.statement_date
    where
        {{ in_change_set(['cast(unseen.statement_date as date)'],
            'select business_date from changed', upstreams) }}
),

items as (
    select * from payment_items
    union all
    select * from refund_items
    union all
    select * from unseen_items
),

final as (
    select
        items.item_id,
        items.channel,
        items.account_key,
        accounts.account_name,
        items.shop,
        items.statement_date,
        items.statement_date as business_date,
        items.item_type,
        case
            when
                items.status_reason in (
                    'as_expected', 'day_boundary', 'no_shop_refund_record', 'test_order'
                )
                then 'matched'
            when items.status_reason in ('amount_differs', 'exceeds_order') then 'amount_mismatch'
            when items.status_reason = 'not_in_statement' then 'missing_in_channel'
            when items.status_reason in ('charged_again', 'refunded_again')
                then 'duplicate_in_channel'
            else 'missing_in_shop'
        end as status,
        items.status_reason,
        items.order_no,
        items.merchant_order_no,
        items.channel_txn_no,
        items.refund_no,
        items.shop_amount_fen,
        items.channel_amount_fen,
        items.channel_amount_fen - items.shop_amount_fen as difference_fen,
        items.fee_fen,
        cast(
            case
                when items.channel_amount_fen is not null
                    then
                        sign(items.channel_amount_fen)
                        * (case items.item_type when 'refund' then -1 else 1 end)
                        * ((abs(items.channel_amount_fen) * accounts.fee_rate_bp + 5000) // 10000)
            end as bigint
        ) as expected_fee_fen,
        items.shop_at,
        items.channel_at,
        items.statement_file,
        {{ this_run() }} as _built_at
    from items
    inner join accounts on items.account_key = accounts.account_key
)

select * from final
