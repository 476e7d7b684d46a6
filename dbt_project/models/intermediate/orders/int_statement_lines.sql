-- Every payment and refund line of every channel statement, in one shape, with the merchant order
-- number brought to the order-number standard and the shop order it belongs to.
--
-- Matching rule: the merchant order number as sent; failing that, the number with one of the
-- account's known affixes (seed `order_no_affixes`) removed, provided what remains has the shape of
-- the shop's own numbers. A line whose number matches no order keeps its standardised number (or
-- none) and no order: settlement reports it as `missing_in_shop`.
--
-- Incremental by statement day: a statement file never changes once its day is over (a correction
-- is a new file for the same day), so a run rebuilds the lines of the days it landed, plus every
-- earlier line that matched no order yet (its order may have landed since); lines of a rebuilt day
-- that its files no longer hold are removed after the build. Its change log (macros/changes.sql)
-- holds each rebuilt line's order and payment before and after, for the models keyed by them.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='line_key',
        pre_hook="{{ log_before(statement_lines_logged(),
            in_run_days('statement_date') ~ ' or order_id is null') }}",
        post_hook="{{ record_build(statement_lines_logged(), stale_run_days('statement_date')) }}",
        on_schema_change='fail',
    )
}}

with

alipay_lines as (
    select * from {{ ref('stg_alipay__statement_lines') }}
    where {{ in_run_days('statement_date') }}
),

wechat_lines as (
    select * from {{ ref('stg_wechat__bill_lines') }}
    where {{ in_run_days('statement_date') }}
),

accounts as (
    select * from {{ ref('channel_accounts') }}
),

affixes as (
    select * from {{ ref('order_no_affixes') }}
),

orders as not materialized (
    select * from {{ ref('int_orders_unified') }}
),

lines as (
    select * from alipay_lines
    union all by name
    select * from wechat_lines
),

with_account as (
    select
        accounts.account_key
        || ':' || lines.channel_txn_no
        || ':' || lines.line_type
        || ':' || coalesce(lines.merchant_refund_no, '') as line_key,
        lines.channel,
        accounts.account_key,
        lines.account_no,
        accounts.shop,
        lines.channel_txn_no,
        lines.line_type,
        lines.merchant_order_no,
        lines.merchant_refund_no,
        lines.channel_refund_no,
        lines.product_name,
        lines.buyer_account_masked,
        lines.buyer_openid,
        lines.created_at,
        lines.completed_at,
        lines.amount_fen,
        lines.order_amount_fen,
        lines.fee_fen,
        lines.fee_rate_text,
        lines.statement_date,
        lines._source
    from lines
    inner join accounts
        on lines.account_no = accounts.statement_account_no and lines.channel = accounts.channel
),

to_match as (
    select * from with_account
    {% if is_incremental() %}
        union all
        -- earlier lines that matched no order: try again, their order may have landed since
        select
            line_key,
            channel,
            account_key,
            account_no,
            shop,
            channel_txn_no,
            line_type,
            merchant_order_no,
            merchant_refund_no,
            channel_refund_no,
            product_name,
            buyer_account_masked,
            buyer_openid,
            created_at,
            completed_at,
            amount_fen,
            order_amount_fen,
            fee_fen,
            fee_rate_text,
            statement_date,
            _source
        from {{ this }}
        where order_id is null and not ({{ in_run_days('statement_date') }})
    {% endif %}
),

as_sent as (
    -- most lines carry the shop's number as it is: match those first, in one join
    select
        to_match.*,
        to_match.merchant_order_no as candidate_no,
        'as_sent' as match_rule,
        0 as rule_rank,
        orders.order_id,
        orders.order_no as matched_order_no,
        {{ is_native_order_no('to_match.shop', 'to_match.merchant_order_no') }}
            as is_well_formed
    from to_match
    left join orders
        on
            to_match.shop = orders.shop
            and {{ order_no('to_match.shop', 'to_match.merchant_order_no') }}
            = orders.order_no
),

stripped as (
    -- the rest: the number with one of the account's known affixes removed
    select
        as_sent.* exclude (
            candidate_no,
            match_rule,
            rule_rank,
            as_sent.order_id,
            as_sent.matched_order_no,
            as_sent.is_well_formed
        ),
        {{ strip_affix('as_sent.merchant_order_no', 'affixes.affix', 'affixes.position') }}
            as candidate_no,
        affixes.position || '_removed:' || affixes.affix as match_rule,
        1 as rule_rank
    from as_sent
    inner join affixes on as_sent.account_key = affixes.account_key
    where as_sent.order_id is null
),

stripped_matched as (
    select
        stripped.*,
        orders.order_id,
        orders.order_no as matched_order_no,
        {{ is_native_order_no('stripped.shop', 'stripped.candidate_no') }} as is_well_formed
    from stripped
    left join orders
        on
            stripped.shop = orders.shop
            and {{ order_no('stripped.shop', 'stripped.candidate_no') }} = orders.order_no
    where stripped.candidate_no is not null
),

unresolved as (
    -- lines the as-sent number did not match, with every affix-stripped candidate
    select * from as_sent
    where order_id is null
    union all
    select * from stripped_matched
),

best_unresolved as (
    select *
    from unresolved
    qualify row_number() over (
        partition by line_key
        order by (order_id is not null) desc, is_well_formed desc, rule_rank asc, match_rule asc
    ) = 1
),

best as (
    select * from as_sent
    where order_id is not null
    union all
    select * from best_unresolved
),

final as (
    select
        line_key,
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
        _source,
        cast('{{ run_started_at }}' as timestamptz) as _built_at
    from best
)

select * from final
