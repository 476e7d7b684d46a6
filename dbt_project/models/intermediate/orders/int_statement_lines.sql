-- Every payment and refund line of every channel statement, in one shape, with the merchant order
-- number brought to the order-number standard and the shop order it belongs to.
--
-- Matching rule: the merchant order number as sent; failing that, the number with one of the
-- account's known affixes (seed `order_no_affixes`) removed, provided what remains has the shape of
-- the shop's own numbers. A line whose number matches no order keeps its standardised number (or
-- none) and no order: settlement reports it as `missing_in_shop`.
with

alipay_lines as (
    select * from {{ ref('stg_alipay__statement_lines') }}
),

wechat_lines as (
    select * from {{ ref('stg_wechat__bill_lines') }}
),

accounts as (
    select * from {{ ref('channel_accounts') }}
),

affixes as (
    select * from {{ ref('order_no_affixes') }}
),

orders as (
    select * from {{ ref('int_orders_unified') }}
),

lines as (
    select * from alipay_lines
    union all by name
    select * from wechat_lines
),

with_account as (
    select
        accounts.account_key,
        accounts.shop,
        lines.*
    from lines
    inner join accounts
        on lines.account_no = accounts.statement_account_no and lines.channel = accounts.channel
),

candidates as (
    -- the number as sent
    select
        with_account.*,
        with_account.merchant_order_no as candidate_no,
        'as_sent' as match_rule,
        0 as rule_rank
    from with_account
    union all
    -- the number with one known affix removed
    select
        with_account.*,
        {{ strip_affix('with_account.merchant_order_no', 'affixes.affix', 'affixes.position') }}
            as candidate_no,
        affixes.position || '_removed:' || affixes.affix as match_rule,
        1 as rule_rank
    from with_account
    inner join affixes on with_account.account_key = affixes.account_key
),

matched as (
    select
        candidates.*,
        orders.order_id,
        orders.order_no as matched_order_no,
        {{ is_native_order_no('candidates.shop', 'candidates.candidate_no') }} as is_well_formed
    from candidates
    left join orders
        on
            candidates.shop = orders.shop
            and {{ order_no('candidates.shop', 'candidates.candidate_no') }} = orders.order_no
    where candidates.candidate_no is not null
),

best as (
    select *
    from matched
    qualify row_number() over (
        partition by account_key, channel_txn_no, line_type, coalesce(merchant_refund_no, '')
        order by (order_id is not null) desc, is_well_formed desc, rule_rank asc, match_rule asc
    ) = 1
),

final as (
    select
        channel,
        account_key,
        account_no,
        shop,
        channel_txn_no,
        line_type,
        merchant_order_no,
        case
            when order_id is not null then matched_order_no
            when is_well_formed then {{ order_no('shop', 'candidate_no') }}
        end as order_no,
        order_id,
        case when order_id is not null or is_well_formed then match_rule end as match_rule,
        merchant_refund_no,
        channel_refund_no,
        product_name,
        buyer_account_masked,
        buyer_openid,
        created_at,
        completed_at,
        {{ business_date('completed_at') }} as completed_date,
        amount_fen,
        order_amount_fen,
        fee_fen,
        fee_rate_text,
        statement_date,
        _source
    from best
)

select * from final
