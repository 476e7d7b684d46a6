{#- Each incremental model's change set: the keys a run rebuilds, from what its inputs changed
    since its last build (macros/changes.sql). One macro per model, used by the model's body and
    both its hooks, so the three always agree. -#}

{#- int_orders_unified, by (shop, order_id): orders whose staging row changed, and orders whose
    payment method or substation product now maps differently (the reference tables are small
    snapshots that can change under old orders). -#}
{% macro orders_unified_changes() -%}
    {{ changed_since('stg_shop__orders', "'main' as shop, order_id") }}
    union
    {{ changed_since('stg_substation__orders', "'substation' as shop, order_id") }}
    {%- if is_incremental() %}
    union
    select stored.shop, stored.order_id
    from {{ this }} as stored
    left join {{ ref('int_order_pay_accounts') }} as pay
        on stored.shop = pay.shop and stored.pay_id = pay.pay_id
    left join {{ ref('stg_substation__commodities') }} as commodities
        on stored.shop = 'substation' and stored.listing_id = commodities.commodity_id
    where
        stored.pay_code is distinct from pay.pay_code
        or stored.account_key is distinct from pay.account_key
        or stored.channel is distinct from pay.channel
        or (
            stored.shop = 'substation'
            and stored.is_manual is distinct from coalesce(commodities.is_manual, false)
        )
    {%- endif %}
{%- endmacro %}

{#- int_statement_lines: the columns its change log keeps, before and after a run: the line, the
    order and payment it names (for the models keyed by them), where the reconciliation files and
    ranks it, and the number it was sent with. -#}
{% macro statement_lines_logged() -%}
    {{ return(['line_key', 'shop', 'order_id', 'order_no', 'channel', 'channel_txn_no', 'line_type',
        'statement_date', 'account_key', 'merchant_refund_no', 'channel_refund_no',
        'merchant_order_no']) }}
{%- endmacro %}

{#- int_order_payments, by (shop, order_id): orders that changed, and the orders a rebuilt
    statement line pays, before and after. -#}
{% macro order_payments_changes() -%}
    {{ changed_since('int_orders_unified', 'shop, order_id') }}
    union
    select shop, order_id from ({{ changed_since('int_statement_lines', 'shop, order_id') }})
    where order_id is not null
{%- endmacro %}

{#- int_identifiers_observed, by record: the models whose changes it follows. -#}
{% macro identifiers_observed_upstreams() -%}
    {{ return(['stg_shop__orders', 'stg_substation__orders', 'int_statement_lines']) }}
{%- endmacro %}

{#- int_identifiers_observed: the records (`record_key`; with `shop` and `order_id` for an order)
    whose identifiers may have changed: orders whose staging row changed or that a rebuilt
    statement line pays, before or after; and the substation accounts and CRM members whose
    fields differ from the rows the table holds for them (a record's rows follow from its fields
    and the identity seeds, whose change rebuilds everything). -#}
{% macro identifiers_observed_changes() -%}
    select 'main' as shop, order_id, 'main_order:' || order_id as record_key
    from ({{ changed_since('stg_shop__orders', 'order_id') }})
    union
    select 'substation' as shop, order_id, 'sub_order:' || order_id as record_key
    from ({{ changed_since('stg_substation__orders', 'order_id') }})
    union
    select shop, order_id, {{ order_record_key('shop', 'order_id') }} as record_key
    from ({{ changed_since('int_statement_lines', 'shop, order_id') }})
    where order_id is not null
    {%- if is_incremental() %}
    union
    select null as shop, null as order_id, coalesce(fresh.record_key, stored.record_key)
    from ({{ people_digests('(' ~ people_fields() ~ ')') }}) as fresh
    full join ({{ people_digests(this, stored=true) }}) as stored
        on fresh.record_key = stored.record_key
    where fresh.n is distinct from stored.n or fresh.h is distinct from stored.h
    {%- endif %}
{%- endmacro %}

{#- int_identifiers_observed: the identifier fields of every substation account and CRM member. -#}
{% macro people_fields() -%}
    select * from ({{ substation_user_fields() }})
    union all
    select * from ({{ crm_member_fields() }})
{%- endmacro %}

{#- Per record, the count and an order-independent sum of hashes of its identifier fields (as
    publishing digests a partition): two records with equal digests hold the same fields, but
    for a 64-bit hash collision. `relation`: `people_fields()`, or the table itself (`stored`). -#}
{% macro people_digests(relation, stored=false) -%}
    select
        record_key,
        count(*) as n,
        sum(hash(id_kind, raw_value, source_ref, seen_at)::hugeint) as h
    from {{ relation }}
    {%- if stored %}
    where system in ('substation.user', 'crm.members') and not is_derived
    {%- endif %}
    group by record_key
{%- endmacro %}

{#- stg_supplier__card_batch_lines: the columns its change log keeps, before and after a run: the
    line's key and the supplier item it names (what int_product_names aggregates lines by). -#}
{% macro supplier_lines_logged() -%}
    {{ return(['_line_key', 'supplier_code', 'supplier_sku', 'supplier_product_name']) }}
{%- endmacro %}

{#- stg_supplier__card_batch_lines, by line: a supplier line's key as the contract has it (supplier,
    batch number as landed, key), over the source's columns. The supplier's folder and the key's
    hash hold no '/', so the text splits one way only. -#}
{% macro supplier_line_key() -%}
    _account || '/' || batch_no || '/' || card_secret
{%- endmacro %}

{#- int_order_numbers_standardised, by number (`source_system`, `_number_key`): the models whose
    changes it follows. -#}
{% macro order_numbers_upstreams() -%}
    {{ return(['int_orders_unified', 'int_statement_lines']) }}
{%- endmacro %}

{#- int_order_numbers_standardised: the numbers of the orders int_orders_unified rebuilt, before
    and after; the merchant order numbers of the statement lines that changed, before and after;
    and the numbers of the main shop's refunds landed in the run's days or naming an order that
    changed. -#}
{% macro order_numbers_changes() -%}
    select shop || '.orders' as source_system, coalesce(native_order_no, '') as _number_key
    from ({{ changed_since('int_orders_unified', 'shop, native_order_no') }})
    union
    select account_key, coalesce(merchant_order_no, '')
    from ({{ changed_since('int_statement_lines', 'account_key, merchant_order_no') }})
    union
    select 'main.refunds', coalesce(order_sn, '') from {{ source('shop', 'shop__refunds') }}
    where {{ in_run_days('business_date') }}
    union
    select 'main.refunds', coalesce(order_sn, '') from {{ ref('stg_shop__refunds') }}
    where {{ order_no("'main'", 'order_sn') }} in (
        select order_no from ({{ changed_since('int_orders_unified', 'shop, order_no') }})
        where shop = 'main'
    )
{%- endmacro %}

{#- int_main_key_deliveries, by main-shop order: the orders int_orders_unified rebuilt. -#}
{% macro main_key_deliveries_changes() -%}
    select order_id from ({{ changed_since('int_orders_unified', 'shop, order_id') }})
    where shop = 'main'
{%- endmacro %}

{#- int_card_keys_costed, by key: the models whose changes it follows. -#}
{% macro card_keys_costed_upstreams() -%}
    {{ return(['stg_shop__card_keys', 'stg_substation__card_keys', 'int_main_key_deliveries']) }}
{%- endmacro %}

{#- int_card_keys_costed: the keys (`shop`, `card_key_id`) whose row changed (staging), whose
    main-shop delivering order changed (the keys an order delivered, before and after), and whose
    supplier line may have (the keys in supplier files of the run's days, and the keys whose line
    came from one of those days: a re-sent file may no longer hold it). -#}
{% macro card_keys_costed_changes() -%}
    {%- set changed_texts -%}
        select key_text from ({{ changed_since('int_main_key_deliveries', 'key_text') }})
        union all
        {{ supplier_key_texts_landed() }}
    {%- endset -%}
    select 'main' as shop, card_key_id
    from ({{ changed_since('stg_shop__card_keys', 'card_key_id') }})
    union
    select 'substation' as shop, card_key_id
    from ({{ changed_since('stg_substation__card_keys', 'card_key_id') }})
    union
    select 'main' as shop, card_key_id from {{ ref('stg_shop__card_keys') }}
    where key_text in ({{ changed_texts }})
    union
    select 'substation' as shop, card_key_id from {{ ref('stg_substation__card_keys') }}
    where key_text in ({{ supplier_key_texts_landed() }})
    {%- if is_incremental() %}
    union
    select shop, card_key_id from {{ this }} where {{ in_run_days('supplier_received_date') }}
    {%- endif %}
{%- endmacro %}

{#- The keys (`key_text`) in supplier files of the run's days, read from the landed partitions
    (the staging view ranks every version ever landed, which a filter on the day cannot skip). -#}
{% macro supplier_key_texts_landed() -%}
    select card_secret as key_text from {{ source('supplier', 'supplier__card_batches') }}
    where {{ in_run_days('business_date') }}
{%- endmacro %}

{#- fct_key_movements, by key: the models whose changes it follows. -#}
{% macro key_movements_upstreams() -%}
    {{ return(['int_card_keys_costed', 'int_orders_unified']) }}
{%- endmacro %}

{#- fct_key_movements: the columns its change log keeps, before and after a run: the key, and what
    the inventory KPIs count a movement by. -#}
{% macro key_movements_logged() -%}
    {{ return(['key_id', 'business_date', 'movement', 'shop', 'sku_code', 'units', 'value_fen']) }}
{%- endmacro %}

{#- fct_key_movements: the keys (`key_id`) that changed, the keys delivered to an order that
    changed (its order number), and the keys whose listing now maps to another SKU (the listing
    map is a small table rebuilt every run, so a coding change can move old movements). -#}
{% macro key_movements_changes() -%}
    select key_id from ({{ changed_since('int_card_keys_costed', 'key_id') }})
    union
    select key_id from {{ ref('int_card_keys_costed') }}
    where (shop, order_id) in (
        select shop, order_id from ({{ changed_since('int_orders_unified', 'shop, order_id') }})
    )
    {%- if is_incremental() %}
    union
    select stored.key_id
    from {{ this }} as stored
    left join {{ ref('int_listings_mapped') }} as listings
        on stored.shop = listings.shop and stored.listing_id = listings.listing_id
    where stored.sku_code is distinct from listings.sku_code
    {%- endif %}
{%- endmacro %}

{#- fct_orders, by order: the models whose changes it follows. -#}
{% macro fct_orders_upstreams() -%}
    {{ return(['int_orders_unified', 'int_order_payments', 'int_card_keys_costed']) }}
{%- endmacro %}

{#- fct_orders: the orders (`shop`, `order_id`) whose order, payment or delivered keys changed;
    and, compared with what the table holds, the orders whose refunds, buyer (`user_key`) or
    SKU now differ (those inputs are rebuilt in full on every run), and the paid orders not
    delivered yet, whose stock-out flag moves with the data's as-of time. -#}
{% macro fct_orders_changes() -%}
    {{ changed_since('int_orders_unified', 'shop, order_id') }}
    union
    {{ changed_since('int_order_payments', 'shop, order_id') }}
    union
    select shop, order_id from ({{ changed_since('int_card_keys_costed', 'shop, order_id') }})
    where order_id is not null
    {%- if is_incremental() %}
    union
    select shop, order_id from (
        (
            select shop, order_id, {{ fct_orders_refund_columns() }}
            from ({{ fct_orders_refunds() }})
            where refunds_succeeded > 0 or first_refund_succeeded_at is not null
            except
            select shop, order_id, {{ fct_orders_refund_columns() }} from {{ this }}
            where refunds_succeeded > 0 or first_refund_succeeded_at is not null
        )
        union all
        (
            select shop, order_id, {{ fct_orders_refund_columns() }} from {{ this }}
            where refunds_succeeded > 0 or first_refund_succeeded_at is not null
            except
            select shop, order_id, {{ fct_orders_refund_columns() }}
            from ({{ fct_orders_refunds() }})
            where refunds_succeeded > 0 or first_refund_succeeded_at is not null
        )
    )
    union
    select stored.shop, stored.order_id
    from {{ this }} as stored
    left join {{ ref('int_order_buyers') }} as buyers
        on stored.shop = buyers.shop and stored.order_id = buyers.order_id
    left join {{ ref('int_listings_mapped') }} as listings
        on stored.shop = listings.shop and stored.listing_id = listings.listing_id
    where
        stored.user_key is distinct from buyers.user_key
        or stored.sku_code is distinct from listings.sku_code
        or (stored.is_paid_in_shop and not stored.is_manual and stored.delivered_at is null)
    {%- endif %}
{%- endmacro %}

{#- fct_orders: the columns its change log keeps, before and after a run: the key, what its
    readers look orders up by, and what the daily KPIs count (so a KPI day is rebuilt only when
    an order of it changed in a way the day's figures see). -#}
{% macro fct_orders_logged() -%}
    {{ return(['shop', 'order_id', 'business_date', 'order_no', 'paid_date', 'user_key', 'is_paid',
        'amount_fen', 'is_manual', 'delivery_seconds', 'is_stockout', 'sku_code', 'supplier_code',
        'channel', 'refunds_succeeded', 'refunded_fen', 'is_paid_in_shop', 'payment_txn_no',
        'paid_at', 'account_key']) }}
{%- endmacro %}

{#- fct_orders: the refund columns, per order. -#}
{% macro fct_orders_refund_columns() -%}
    refunds_succeeded, refunded_fen, first_refund_succeeded_at, first_refund_reason
{%- endmacro %}

{#- fct_orders: each order's refunds, from every refund (a small table: refunds are a few in a
    hundred orders). -#}
{% macro fct_orders_refunds() -%}
    select
        shop,
        order_id,
        count(*) filter (where refund_status = 'succeeded') as refunds_succeeded,
        cast(
            coalesce(sum(amount_fen) filter (where refund_status = 'succeeded'), 0) as bigint
        ) as refunded_fen,
        min(succeeded_at) as first_refund_succeeded_at,
        arg_min(reason_code, coalesce(succeeded_at, requested_at))
        filter (where refund_status = 'succeeded') as first_refund_reason
    from {{ ref('int_refunds_unified') }}
    group by shop, order_id
{%- endmacro %}

{#- fct_payments, by payment: the models whose changes it follows. -#}
{% macro fct_payments_upstreams() -%}
    {{ return(['int_statement_lines', 'fct_orders']) }}
{%- endmacro %}

{#- fct_payments: the columns its change log keeps, before and after a run: the key, its day, and
    the order number an anomaly is filed under (an orphan payment's account and merchant order
    number). -#}
{% macro fct_payments_logged() -%}
    {{ return(['payment_id', 'business_date', 'order_no', 'account_key', 'merchant_order_no']) }}
{%- endmacro %}

{#- fct_payments: the payments (`payment_id`) of statement payment lines that changed, and those
    of the orders that changed (before and after): the shop-only payment of the order (with the
    order number, `shop_order_no`), and every statement payment line naming its order number (a
    line joins its order by number). -#}
{% macro fct_payments_changes() -%}
    select channel || ':' || channel_txn_no as payment_id, cast(null as varchar) as shop_order_no
    from ({{ changed_since('int_statement_lines', 'channel, channel_txn_no, line_type') }})
    where line_type = 'payment'
    union
    select shop || ':' || order_no as payment_id, order_no as shop_order_no
    from ({{ changed_since('fct_orders', 'shop, order_no') }})
    union
    select channel || ':' || channel_txn_no as payment_id, cast(null as varchar) as shop_order_no
    from {{ ref('int_statement_lines') }}
    where
        line_type = 'payment'
        and order_no in (select order_no from ({{ changed_since('fct_orders', 'order_no') }}))
{%- endmacro %}

{#- int_buyer_first_paid, by buyer: the buyers of the orders fct_orders rebuilt whose buyer,
    payment or payment day changed, before and after (an order that moved to another buyer, or
    two buyers merged, change both). -#}
{% macro buyer_first_paid_changes() -%}
    select user_key
    from ({{ changed_values('fct_orders', 'shop, order_id, user_key, is_paid, paid_date') }})
{%- endmacro %}

{#- The daily KPIs, by business day: the days an order `fct_orders` rebuilt was created or paid
    on, before and after, when one of `columns` (the order columns the model counts by) changed;
    with `first_paid`, the days a buyer's first paid day moved from or to; and the days the table
    and the business days disagree on (a new day, a day gone). -#}
{% macro kpi_days_changes(columns, first_paid=false) -%}
    {%- set logged = 'shop, order_id, business_date, paid_date, ' ~ columns | join(', ') %}
    select unnest([business_date, paid_date]) as business_date
    from ({{ changed_values('fct_orders', logged) }})
    {%- if first_paid %}
    union
    select first_paid_date
    from ({{ changed_values('int_buyer_first_paid', 'user_key, first_paid_date') }})
    {%- endif %}
    {{ kpi_days_new_or_gone() }}
{%- endmacro %}

{#- The daily KPIs: the days the table and the business days disagree on (a new day, a day gone),
    as a `union` to add to a change set. -#}
{% macro kpi_days_new_or_gone() -%}
    {%- if is_incremental() %}
    union
    (
        select business_date from {{ ref('int_business_days') }}
        except
        select business_date from {{ this }}
    )
    {{ kpi_days_gone() }}
    {%- endif %}
{%- endmacro %}

{#- The daily KPIs: the days the table holds that are no business day any more, as a `union` to
    add to a change set. -#}
{% macro kpi_days_gone() -%}
    {%- if is_incremental() %}
    union
    (
        select business_date from {{ this }}
        except
        select business_date from {{ ref('int_business_days') }}
    )
    {%- endif %}
{%- endmacro %}

{#- fct_refunds, by order (`order_no`): the models whose changes it follows. -#}
{% macro fct_refunds_upstreams() -%}
    {{ return(['fct_orders']) }}
{%- endmacro %}

{#- fct_refunds: the columns of a refund as `int_refunds_unified` gives them. -#}
{% macro refund_columns() -%}
    refund_no, order_no, shop, recorded_by, amount_fen, reason_code, reason_text, refund_status,
    requested_at, succeeded_at, refunded_txn_no
{%- endmacro %}

{#- fct_refunds: the columns its change log keeps, before and after a run: what the refund KPIs
    count a refund by (its day and its order's payment day among them), what the channel
    reconciliation checks it by, and the day it is published under. -#}
{% macro fct_refunds_logged() -%}
    {{ return(['order_no', 'refund_no', 'refund_status', 'amount_fen', 'reason_code',
        'succeeded_date', 'paid_date', 'shop', 'recorded_by', 'succeeded_at', 'channel',
        'account_key', 'business_date']) }}
{%- endmacro %}

{#- fct_refunds: the orders (`order_no`) fct_orders rebuilt, and, compared with what the table
    holds, the orders whose refunds now differ (`int_refunds_unified` is rebuilt in full every run;
    refunds are a few in a hundred orders). -#}
{% macro fct_refunds_changes() -%}
    select order_no from ({{ changed_since('fct_orders', 'order_no') }})
    {%- if is_incremental() %}
    union
    select order_no from (
        (
            select {{ refund_columns() }} from {{ ref('int_refunds_unified') }}
            except
            select {{ refund_columns() }} from {{ this }}
        )
        union all
        (
            select {{ refund_columns() }} from {{ this }}
            except
            select {{ refund_columns() }} from {{ ref('int_refunds_unified') }}
        )
    )
    {%- endif %}
{%- endmacro %}

{#- kpi_refunds_daily, by business day: the days a paid order's figures count on (its payment
    day) when an order fct_orders rebuilt changed in a way they see, before and after, and the
    days its refunds succeeded on; the payment days and success days of refunds that changed,
    before and after; and the days new or gone. -#}
{% macro kpi_refund_days_changes() -%}
    {%- set order_columns = 'shop, order_id, order_no, paid_date, is_paid, amount_fen, sku_code, '
        ~ 'supplier_code, channel, refunds_succeeded, refunded_fen' %}
    select paid_date as business_date from ({{ changed_values('fct_orders', order_columns) }})
    union
    select succeeded_date from {{ ref('fct_refunds') }}
    where order_no in (
        select order_no from ({{ changed_values('fct_orders', order_columns) }})
    )
    union
    select unnest([succeeded_date, paid_date])
    from ({{ changed_values('fct_refunds', fct_refunds_logged() | join(', ')) }})
    {{ kpi_days_new_or_gone() }}
{%- endmacro %}

{#- anomaly_orders, by order number (an orphan payment's: its account and merchant order
    number): the models whose changes it follows. -#}
{% macro anomaly_orders_upstreams() -%}
    {{ return(['fct_orders', 'fct_payments']) }}
{%- endmacro %}

{#- anomaly_orders: the order number of a statement payment no shop order has. -#}
{% macro orphan_payment_key() -%}
    coalesce(order_no, account_key || ':' || merchant_order_no)
{%- endmacro %}

{#- anomaly_orders: the orders (`order_no`) fct_orders rebuilt, and the order numbers of the
    payments fct_payments rebuilt, before and after (a payment that now finds its order leaves
    the orphans). -#}
{% macro anomaly_orders_changes() -%}
    select order_no from ({{ changed_since('fct_orders', 'order_no') }})
    union
    select unnest([order_no, account_key || ':' || merchant_order_no])
    from ({{ changed_since('fct_payments', 'order_no, account_key, merchant_order_no') }})
{%- endmacro %}


{#- kpi_inventory_daily, by business day: stock carries from day to day, so every day from the
    earliest of: the days of stock movements whose count or value changed, before and after (one
    imported before the first day counts on it), the payment days of orders whose stock-out flag
    changed, before and after, and the days new or gone; and the days gone. -#}
{% macro kpi_inventory_days_changes() -%}
    {%- set first_day = '(select min(business_date) from ' ~ ref('int_business_days') ~ ')' %}
    select business_date from {{ ref('int_business_days') }}
    where business_date >= (
        select min(business_date) from (
            select greatest(business_date, {{ first_day }}) as business_date
            from ({{ changed_values('fct_key_movements', key_movements_logged() | join(', ')) }})
            union all
            select paid_date
            from ({{ changed_values('fct_orders', 'shop, order_id, paid_date, is_paid, is_stockout') }})
            {{ kpi_days_new_or_gone() }}
        )
    )
    {{ kpi_days_gone() }}
{%- endmacro %}

{#- rpt_channel_reconciliation: the models whose changes it follows. -#}
{% macro reconciliation_upstreams() -%}
    {{ return(['int_statement_lines', 'fct_orders', 'fct_refunds']) }}
{%- endmacro %}

{#- rpt_channel_reconciliation: a refund line's place among the lines refunding the same refund
    of one account (the first is the refund, the others refund it again). -#}
{% macro refund_line_group(lines) -%}
    {{ lines }}.account_key,
    coalesce({{ lines }}.merchant_refund_no, {{ lines }}.channel_refund_no, {{ lines }}.line_key)
{%- endmacro %}

{#- rpt_channel_reconciliation: why a payment line whose order the shops do not have is missing:
    the refused row of a staff test order, paid or not, another refused order row, or no row. -#}
{% macro unmatched_payment_reason(is_test_order, is_paid) -%}
    case
        when {{ is_test_order }} and not {{ is_paid }} then 'lost_callback'
        when {{ is_test_order }} then 'test_order'
        when not {{ is_test_order }} then 'order_quarantined'
        else 'unknown_order'
    end
{%- endmacro %}

{#- rpt_channel_reconciliation: an order's refused rows (ingestion's quarantine), one per order. -#}
{% macro refused_orders() -%}
    select
        shop,
        order_no,
        bool_or(is_test_order) as is_test_order,
        bool_or(is_paid_in_record) as is_paid_in_record
    from {{ ref('stg_lake__quarantined_orders') }}
    group by all
{%- endmacro %}

{#- rpt_channel_reconciliation, by statement day: the days of the statements the run landed; of
    the lines whose logged values changed, before and after, and of every refund line ranked with
    one of them or with a line of a landed day; of the lines of orders whose checked figures
    changed, and those orders' payment day and the next (where a payment no statement holds is
    listed), before and after; the same for refunds; and of the lines no order matches whose
    refused row now says otherwise than the table. -#}
{% macro reconciliation_days_changes() -%}
    {%- set line_columns = statement_lines_logged() | join(', ') %}
    {%- set order_columns = 'shop, order_id, order_no, is_paid_in_shop, payment_txn_no, amount_fen, '
        ~ 'paid_date, paid_at, channel, account_key' %}
    {%- set refund_columns = 'refund_no, order_no, shop, recorded_by, refund_status, amount_fen, '
        ~ 'succeeded_date, succeeded_at, channel, account_key' %}
    {%- set lines = ref('int_statement_lines') %}
    {%- set touched_lines -%}
        select line_key, account_key, merchant_refund_no, channel_refund_no
        from ({{ changed_values('int_statement_lines', line_columns) }})
        union all
        select line_key, account_key, merchant_refund_no, channel_refund_no from {{ lines }}
        where {{ in_run_days('statement_date') }}
    {%- endset %}
    select statement_date as business_date from {{ ref('stg_lake__statement_files') }}
    where {{ in_run_days('statement_date') }}
    union
    select statement_date
    from ({{ changed_values('int_statement_lines', line_columns) }})
    union
    select lines.statement_date from {{ lines }} as lines
    where
        lines.line_type = 'refund'
        and ({{ refund_line_group('lines') }}) in (
            select {{ refund_line_group('touched') }} from ({{ touched_lines }}) as touched
        )
    union
    select lines.statement_date from {{ lines }} as lines
    where (lines.shop, lines.order_id) in (
        select shop, order_id from ({{ changed_values('fct_orders', order_columns) }})
    )
    union
    select unnest([paid_date, paid_date + 1])
    from ({{ changed_values('fct_orders', order_columns) }})
    union
    select lines.statement_date from {{ lines }} as lines
    where
        lines.line_type = 'refund'
        and (lines.shop, lines.merchant_refund_no) in (
            select shop, refund_no from ({{ changed_values('fct_refunds', refund_columns) }})
        )
    union
    select unnest([succeeded_date, succeeded_date + 1])
    from ({{ changed_values('fct_refunds', refund_columns) }})
    {%- if is_incremental() %}
    union
    select lines.statement_date
    from {{ lines }} as lines
    inner join {{ this }} as stored on lines.line_key = stored.item_id
    left join ({{ refused_orders() }}) as refused
        on lines.shop = refused.shop and lines.order_no = refused.order_no
    where
        lines.line_type = 'payment'
        and lines.order_id is null
        and stored.status_reason is distinct from
        {{ unmatched_payment_reason('refused.is_test_order', 'refused.is_paid_in_record') }}
    {%- endif %}
{%- endmacro %}

{#- int_product_names, by product: the models whose changes it follows. -#}
{% macro product_names_upstreams() -%}
    {{ return(['stg_supplier__card_batch_lines']) }}
{%- endmacro %}

{#- int_product_names: the shops' listings (main-shop goods, substation commodities), each as its
    row in the table, from the shops' current snapshots. -#}
{% macro product_listings() -%}
    with

    goods as (
        select * from {{ ref('stg_shop__goods') }}
    ),

    goods_groups as (
        select * from {{ ref('stg_shop__goods_groups') }}
    ),

    commodities as (
        select * from {{ ref('stg_substation__commodities') }}
    ),

    categories as (
        select * from {{ ref('stg_substation__categories') }}
    ),

    main_listings as (
        select
            'main' as system,  -- noqa: RF04
            cast(goods.goods_id as varchar) as product_ref,
            goods.goods_id as listing_id,
            cast(null as varchar) as supplier_code,
            cast(null as varchar) as supplier_sku,
            goods.goods_name as source_name,
            goods_groups.group_name as source_category_name,
            goods.retail_price_fen as stated_face_value_fen,
            goods.price_fen as list_price_fen,
            goods.retail_price_fen,
            goods.is_manual,
            goods.created_at as first_seen_at,
            cast(null as date) as first_seen_date,
            cast(null as date) as last_seen_date,
            cast(null as bigint) as line_count
        from goods
        left join goods_groups on goods.group_id = goods_groups.group_id
    ),

    substation_listings as (
        select
            'substation' as system,  -- noqa: RF04
            cast(commodities.commodity_id as varchar) as product_ref,
            commodities.commodity_id as listing_id,
            cast(null as varchar) as supplier_code,
            commodities.commodity_code as supplier_sku,
            commodities.commodity_name as source_name,
            categories.category_name as source_category_name,
            cast(null as bigint) as stated_face_value_fen,
            commodities.price_fen as list_price_fen,
            cast(null as bigint) as retail_price_fen,
            commodities.is_manual,
            commodities.created_at as first_seen_at,
            cast(null as date) as first_seen_date,
            cast(null as date) as last_seen_date,
            cast(null as bigint) as line_count
        from commodities
        left join categories on commodities.category_id = categories.category_id
    )

    select * from main_listings
    union all
    select * from substation_listings
{%- endmacro %}

{#- int_product_names: the columns of a listing's row that come from its source (every column
    but the normalised name and its parts). -#}
{% macro product_listing_columns() -%}
    system, product_ref, listing_id, supplier_code, supplier_sku, source_name, source_category_name,
    stated_face_value_fen, list_price_fen, retail_price_fen, is_manual, first_seen_at,
    first_seen_date, last_seen_date, line_count
{%- endmacro %}

{#- int_product_names: the listings whose row differs from the table's, either way (new, changed
    or gone); and the supplier items (`product_ref` supplier/sku, `source_name` the written name)
    of the supplier lines that changed, before and after. -#}
{% macro product_names_changes() -%}
    {%- set columns = product_listing_columns() %}
    select system, product_ref, source_name from (
        (
            select {{ columns }} from ({{ product_listings() }})
            except
            select {{ columns }} from {{ this }} where system <> 'supplier'
        )
        union all
        (
            select {{ columns }} from {{ this }} where system <> 'supplier'
            except
            select {{ columns }} from ({{ product_listings() }})
        )
    )
    union
    select 'supplier', supplier_code || '/' || supplier_sku, supplier_product_name
    from ({{ changed_since('stg_supplier__card_batch_lines',
        'supplier_code, supplier_sku, supplier_product_name') }})
{%- endmacro %}
