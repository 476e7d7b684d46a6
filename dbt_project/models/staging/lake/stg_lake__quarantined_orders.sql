-- Order rows of both shops that ingestion refused, one row per order and rule, with the order's
-- number in the order-number standard.
with

source as (
    select * from {{ source('lake', 'quarantined_orders') }}
),

typed as (
    select
        case
            when filename like '%/shop__orders/%' then 'main'
            when filename like '%/substation__order/%' then 'substation'
        end as shop,
        case
            when filename like '%/shop__orders/%' then json_extract_string(_record, '$.order_sn')
            else json_extract_string(_record, '$.trade_no')
        end as native_order_no,
        -- dujiaoka: 1 待支付, -1 过期, anything else was paid; acg-faka: 1 已支付
        case
            when filename like '%/shop__orders/%'
                then json_extract_string(_record, '$.status') not in ('1', '-1')
            else json_extract_string(_record, '$.status') = '1'
        end as is_paid_in_record,
        _rule as rule_name,
        _reason as reason
    from source
    where _record is not null
),

final as (
    select distinct
        shop,
        {{ order_no('shop', 'native_order_no') }} as order_no,
        rule_name,
        ends_with(rule_name, ':test_order') as is_test_order,
        coalesce(is_paid_in_record, false) as is_paid_in_record,
        reason
    from typed
    where native_order_no is not null and trim(native_order_no) <> ''
)

select * from final
