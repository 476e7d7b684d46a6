-- The floor of the daily-cycle benchmark: the four core marts of one new business day
-- (fct_orders, kpi_sales_daily, kpi_refunds_daily, kpi_inventory_daily) in plain DuckDB SQL,
-- straight from the source files and the shop databases, with the rules of the dbt models
-- (staging -> intermediate -> marts) written out directly. No dbt, no Dagster, no GX.
--
-- Run by benchmarks/floor.py, which
--   * sets the variables below (SET VARIABLE ...; read here with getvariable()),
--   * hands over the shop databases' rows as Arrow tables (DuckDB cannot read SQLite here):
--     src_main_* (dujiaoka) and src_sub_* (acg-faka), every column as text exactly as stored,
--     filtered in SQLite to the window this script needs (see "What is read" below),
--   * lists the source files (statements and supplier deliveries of the day and later; the
--     re-sent and corrected versions of one logical file each with its rank) in stmt_files and
--     supplier_files, with the footer totals a statement states about itself, and parses the
--     XLSX deliveries (DuckDB has no spreadsheet reader in this build) into xlsx_supplier_rows,
--   * times every `-- @step` below separately, and writes the out_* tables as Parquet,
--   * registers card_key_hash(text): the keyed hash the cycle lands a card key as (trimmed as
--     trim() trims; blank stays ''; pipelines/lib/protect.py, under the install's key), so that
--     the day's keys, read in plaintext from the sources, match the hashed keys of the lake.
--
-- Variables: day (DATE, the new business day), d_start / d_end (TIMESTAMP, its bounds in UTC),
-- lo (d_start - 1 hour: the order window, below), now_limit (run time + 1 day: a timestamp
-- after it is "in the future", as the contracts say), seeds (dbt_project/seeds),
-- alipay_pay / alipay_refund (the GBK bytes of 交易 / 退款 read as Latin-1, as the Alipay files
-- are read here), and the file lists *_files of the source files and of the lake.
--
-- Times: every timestamp is kept as a naive UTC TIMESTAMP (the shops write naive Beijing time,
-- acg-faka's older versions unix epochs; the contracts turn both into UTC); the business day of a UTC time t is
-- cast(t + 8 hours as date) (Asia/Shanghai, no DST since 1991); the marts' timestamps are cast
-- to TIMESTAMPTZ at the end (session time zone UTC).
--
-- What is read, and the history the new day needs
-- ------------------------------------------------
-- From the sources, what the cycle lands for the day plus what the day's marts need:
--   * orders (both shops): the rows the shop changed since `lo`, an hour before the day (main:
--     updated_at, indexed; substation: create_time, indexed: acg-faka writes an order when it is
--     created and when it is paid, minutes apart). That holds the orders created on the day (the
--     rows of fct_orders), the orders paid on the day (dujiaoka expires an unpaid order after
--     5 minutes, so an order paid on the day was created at most minutes before it; an hour is
--     allowed), and older main-shop orders that changed on the day (a delivery after a stock-out:
--     such an order is paid on the day when no statement holds its payment,
--     docs/metrics.md#paid_at).
--   * refunds (main shop): those of the orders above, and every refund requested or settled
--     since `lo` (the day's refunds_on).
--   * card keys (both shops): every key with a movement since `lo` (main: updated_at, the latest
--     of import, sale and deletion; substation: purchase or create time).
--   * products, categories, payment methods: whole (small tables).
--   * statements: the files of the day and of any later day present (a payment in the day's last
--     seconds lands in the next day's file; the day's orders' refunds land later);
--   * supplier deliveries: the files of the day and later.
-- History: recomputing thirty days from the sources (every key ever imported, every delivery
-- file) would cost the floor more than the day itself, while the cycle keeps that history in its
-- lake. So the floor reads the cycle's lake (read-only, and only partitions before the day, never
-- the day's own marts), as little of it as the day needs:
--   * kpi_inventory_daily of the 29 days before: the closing stock of the day before, and the
--     day-end stock values and COGS that the 30-day turnover and days of cover average over;
--   * fct_key_movements before the day, of the keys read: what the ledger already counts for them
--     is taken out and their whole life recomputed from their rows now (which is what the cycle's
--     rebuild does, whether or not a key had been landed before: a key imported days ago but
--     landed only today, when it was sold, counts in the stock of the days in between); and
--     their unit cost and supplier (a key's cost never changes);
--   * fct_orders before the day: older orders that a refund settled on the day belongs to (paid,
--     product, supplier of the delivered key, channel, the transaction their payment went through);
--   * raw zone before the day: the statement lines of the creation days of the older orders read
--     (their payment line, if any, decides their paid_at) and those orders' earlier versions (the
--     first version seen paid); the supplier lines, for every product name a supplier has used
--     (the product coding needs them all) and for the cost of keys the ledger did not hold yet.
-- Columns that need the whole identity graph are not computed (fct_orders.user_key;
-- kpi_sales_daily.buyers, new_buyers, customer_unit_price_fen): NULL here, listed by the runner as
-- omitted_columns. Every other column is the cycle's, value for value.
--
-- Assumptions (they hold for the sources cardlake reads; the runner counts in `self_checks` the
-- rows that would break the first two): an order is paid within the hour after its creation; a
-- key's cost is found in the delivery file of the day it was imported; a product code that the
-- day's new names would change for an older listing is not re-applied to the past days' stock.

-- @step setup
create or replace macro p_int(x) as (
    case
        when try_cast(nullif(trim(x), '') as double) = round(try_cast(nullif(trim(x), '') as double))
            then try_cast(try_cast(nullif(trim(x), '') as double) as bigint)
    end
);
create or replace macro p_yuan(x) as
    try_cast(round(try_cast(nullif(trim(x), '') as double) * 100) as bigint);
-- naive Beijing time -> naive UTC (with or without a fraction, as MySQL DATETIME(6) reads back)
create or replace macro p_ts(x) as
    try_strptime(nullif(trim(x), ''), ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f'])
    - interval 8 hour;
-- acg-faka's times: a DATETIME (naive Beijing time), or unix epoch seconds in older versions
-- (an integer: DuckDB's cast would round a fraction that polars refuses)
create or replace macro p_epoch(x) as case
    when regexp_full_match(trim(x), '[+-]?[0-9]{1,18}')
        then make_timestamp(cast(trim(x) as bigint) * 1000000)
    else p_ts(x)
end;
create or replace macro p_date(x) as try_strptime(
    nullif(trim(x), ''), ['%Y-%m-%d', '%Y/%m/%d', '%Y%m%d', '%Y-%m-%d 23:59:59']
)::date;
-- contract rules: a required non-text column is present, not blank and parses; an optional one
-- parses when present; a timestamp is after 2000 and (not_future) at most a day after the read
create or replace macro req(raw, parsed) as
    (raw is not null and trim(raw) <> '' and parsed is not null);
create or replace macro opt(raw, parsed) as (raw is null or trim(raw) = '' or parsed is not null);
create or replace macro present(x) as (x is not null and trim(x) <> '');
create or replace macro bad(raw, parsed) as (present(raw) and parsed is null);
-- an optional money column of a statement parses (its value is not used)
create or replace macro num_ok(x) as
    (x is null or trim(x) = '' or try_cast(trim(x) as double) is not null);
create or replace macro plausible(ts) as (ts is null or ts >= timestamp '2000-01-01');
create or replace macro not_future(ts) as (ts is null or ts <= getvariable('now_limit'));
create or replace macro bdate(ts) as cast(ts + interval 8 hour as date);
create or replace macro tz(ts) as cast(ts as timestamptz);
-- the order-number standard (macros/order_no.sql)
create or replace macro std_order_no(shop, native_no) as
    case shop when 'main' then 'M-' || upper(trim(native_no))
        when 'substation' then 'S-' || trim(native_no) end;
create or replace macro is_native_order_no(shop, v) as
    case shop when 'main' then regexp_full_match(v, '[A-Za-z0-9]{16}')
        when 'substation' then regexp_full_match(v, '[0-9]{18,19}') else false end;
-- the product coding standard (macros/product_coding.sql)
create or replace macro half_width(t) as translate(
    t,
    '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　',
    '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~ '
);
create or replace macro normalise_product_name(n) as regexp_replace(
    regexp_replace(
        regexp_replace(
            replace(replace(upper(half_width(n)), 'RMB', '元'), '块', '元'),
            '[【\[(]\s*(自动发货|自动发卡|人工直充|人工发货|人工处理|秒发|热卖|推荐)\s*[】\])]',
            '',
            'g'
        ),
        '[\s【】\[\]()<>《》「」『』\-_·•|/:：,，。]+',
        '',
        'g'
    ),
    '(卡密)+$',
    ''
);
create or replace macro normalise_code_text(t) as
    regexp_replace(upper(half_width(t)), '[^\p{L}\p{N}]', '', 'g');
create or replace macro strip_direct_marker(n) as regexp_replace(n, '(直充)+$', '');
create or replace macro name_face_yuan(n) as
    try_cast(regexp_extract(strip_direct_marker(n), '(\d+)元?$', 1) as integer);
create or replace macro name_before_face(n) as regexp_replace(strip_direct_marker(n), '\d+元?$', '');

-- seeds (configuration of the dbt project, not sources)
create or replace temp table channel_accounts as
select * from read_csv(getvariable('seeds') || '/channel_accounts.csv', header = true,
    columns = {'account_key': 'VARCHAR', 'channel': 'VARCHAR', 'shop': 'VARCHAR',
        'account_name': 'VARCHAR', 'merchant_id': 'VARCHAR', 'statement_account_no': 'VARCHAR',
        'fee_rate_bp': 'INTEGER', 'statement_layout': 'VARCHAR'});
create or replace temp table pay_method_accounts as
select * from read_csv(getvariable('seeds') || '/pay_method_accounts.csv', header = true,
    all_varchar = true);
create or replace temp table order_no_affixes as
select * from read_csv(getvariable('seeds') || '/order_no_affixes.csv', header = true,
    all_varchar = true);
create or replace temp table refund_reasons as
select * from read_csv(getvariable('seeds') || '/refund_reasons.csv', header = true,
    all_varchar = true);
create or replace temp table product_categories as
select * from read_csv(getvariable('seeds') || '/product_categories.csv', header = true,
    columns = {'category_code': 'VARCHAR', 'category_name': 'VARCHAR',
        'category_name_en': 'VARCHAR', 'default_variant': 'VARCHAR',
        'is_period_based': 'BOOLEAN', 'sort_order': 'INTEGER'});
create or replace temp table product_brands as
select * from read_csv(getvariable('seeds') || '/product_brands.csv', header = true,
    all_varchar = true);
create or replace temp table product_aliases as
select * from read_csv(getvariable('seeds') || '/product_aliases.csv', header = true,
    all_varchar = true);
create or replace temp table product_periods as
select * from read_csv(getvariable('seeds') || '/product_periods.csv', header = true,
    columns = {'category_code': 'VARCHAR', 'variant': 'VARCHAR', 'face_value_yuan': 'INTEGER'});

-- @step reference_tables
-- products, categories and payment methods, whole, with their contracts' rules
create or replace temp table goods as
select p_int(id) as goods_id, p_int(group_id) as group_id, gd_name as goods_name,
    p_yuan(retail_price) as retail_price_fen, p_yuan(actual_price) as price_fen,
    p_int(type) = 2 as is_manual, p_ts(created_at) as created_at
from src_main_goods
where req(id, p_int(id)) and req(group_id, p_int(group_id))
    and gd_name is not null and trim(gd_name) <> ''
    and opt(retail_price, p_yuan(retail_price)) and coalesce(p_yuan(retail_price) >= 0, true)
    and req(actual_price, p_yuan(actual_price)) and p_yuan(actual_price) >= 0
    and opt(in_stock, p_int(in_stock)) and opt(sales_volume, p_int(sales_volume))
    and req(type, p_int(type)) and p_int(type) in (1, 2)
    and opt(is_open, p_int(is_open)) and coalesce(p_int(is_open) in (0, 1), true)
    and opt(created_at, p_ts(created_at)) and plausible(p_ts(created_at))
    and opt(updated_at, p_ts(updated_at)) and plausible(p_ts(updated_at))
    and opt(deleted_at, p_ts(deleted_at)) and plausible(p_ts(deleted_at));

create or replace temp table goods_groups as
select p_int(id) as group_id, trim(gp_name) as group_name
from src_main_goods_group
where req(id, p_int(id)) and gp_name is not null
    and opt(is_open, p_int(is_open)) and coalesce(p_int(is_open) in (0, 1), true)
    and opt(ord, p_int(ord))
    and opt(created_at, p_ts(created_at)) and plausible(p_ts(created_at))
    and opt(updated_at, p_ts(updated_at)) and plausible(p_ts(updated_at))
    and opt(deleted_at, p_ts(deleted_at)) and plausible(p_ts(deleted_at));

create or replace temp table commodities as
select p_int(id) as commodity_id, p_int(category_id) as category_id, name as commodity_name,
    trim(code) as commodity_code, p_yuan(price) as price_fen,
    p_int(delivery_way) = 1 as is_manual, p_epoch(create_time) as created_at
from src_sub_commodity
where req(id, p_int(id)) and req(category_id, p_int(category_id))
    and name is not null and trim(name) <> ''
    and opt(factory_price, p_yuan(factory_price)) and coalesce(p_yuan(factory_price) >= 0, true)
    and req(price, p_yuan(price)) and p_yuan(price) >= 0
    and opt(user_price, p_yuan(user_price)) and coalesce(p_yuan(user_price) >= 0, true)
    and opt(status, p_int(status)) and coalesce(p_int(status) in (0, 1), true)
    and opt(create_time, p_epoch(create_time)) and plausible(p_epoch(create_time))
    and code is not null
    and req(delivery_way, p_int(delivery_way)) and p_int(delivery_way) in (0, 1);

create or replace temp table sub_categories as
select p_int(id) as category_id, trim(name) as category_name
from src_sub_category
where req(id, p_int(id)) and name is not null and opt(sort, p_int(sort))
    and opt(create_time, p_epoch(create_time)) and plausible(p_epoch(create_time))
    and opt(status, p_int(status)) and coalesce(p_int(status) in (0, 1), true);

-- payment method -> channel account -> channel (int_orders_unified)
create or replace temp table pay_methods as
with methods as (
    select 'main' as shop, p_int(id) as pay_id, pay_check as pay_code
    from src_main_pays
    where req(id, p_int(id)) and pay_name is not null and pay_check is not null
        and opt(pay_method, p_int(pay_method))
        and opt(is_open, p_int(is_open)) and coalesce(p_int(is_open) in (0, 1, 2), true)
        and opt(updated_at, p_ts(updated_at)) and plausible(p_ts(updated_at))
    union all
    select 'substation', p_int(id), code
    from src_sub_pay
    where req(id, p_int(id)) and name is not null and code is not null
)
select methods.shop, methods.pay_id, methods.pay_code, pa.account_key, ca.channel
from methods
left join pay_method_accounts as pa on methods.shop = pa.shop and methods.pay_code = pa.pay_code
left join channel_accounts as ca on pa.account_key = ca.account_key;

-- @step supplier_files
-- Supplier lines: the day's (and later) delivery files, CSV here (UTF-8; the runner re-encodes a
-- GBK file to UTF-8 and parses XLSX, DuckDB has neither here), every supplier's own header mapped
-- to the contract's fields (schemas/supplier_headers.yml, resolved per file by the runner)
create or replace temp table supplier_rows_today as
with csv_rows as (
    select * from read_csv(getvariable('supplier_csv_files'), header = false, skip = 1,
        auto_detect = false, delim = ',', quote = '"', escape = '"', null_padding = true,
        filename = true,
        columns = {'c0': 'VARCHAR', 'c1': 'VARCHAR', 'c2': 'VARCHAR', 'c3': 'VARCHAR',
            'c4': 'VARCHAR', 'c5': 'VARCHAR', 'c6': 'VARCHAR', 'c7': 'VARCHAR',
            'c8': 'VARCHAR', 'c9': 'VARCHAR'})
),
all_rows as (
    select * from csv_rows
    union all by name
    select * from xlsx_supplier_rows
),
mapped as (
    select f.*, [r.c0, r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7, r.c8, r.c9] as cells
    from all_rows as r
    inner join supplier_files as f on r.filename = f.read_path
)
select supplier_code, business_date, file_rank,
    cells[i_batch_no + 1] as c_batch_no, cells[i_product_name + 1] as c_product_name,
    cells[i_supplier_sku + 1] as c_supplier_sku, cells[i_face_value + 1] as c_face_value,
    cells[i_unit_cost + 1] as c_unit_cost, cells[i_card_no + 1] as c_card_no,
    cells[i_card_secret + 1] as c_card_secret, cells[i_expiry + 1] as c_expiry
from mapped;

create or replace temp table supplier_lines_today as
with typed as materialized (
    select supplier_code, business_date, file_rank, c_batch_no, c_card_secret, c_product_name,
        present(c_batch_no) and present(c_product_name) and c_supplier_sku is not null
            and p_yuan(c_face_value) > 0 and p_yuan(c_unit_cost) > 0
            and present(c_card_secret) and regexp_matches(c_card_secret, '^[A-Z0-9]{16}$')
            and not bad(c_expiry, p_date(c_expiry)) as is_valid,
        trim(c_batch_no) as batch_no, trim(c_supplier_sku) as supplier_sku,
        p_yuan(c_unit_cost) as unit_cost_fen,
        -- the key as the shops store it, hashed as the lake holds it (the landed card_secret)
        card_key_hash(case when nullif(trim(c_card_no), '') is null then trim(c_card_secret)
            else trim(c_card_no) || '----' || trim(c_card_secret) end) as key_text
    from supplier_rows_today
),
valid as (select * from typed where is_valid),
-- one line per supplier, batch and key (a key listed twice in a batch lands once); only the keys
-- seen twice need the window
twice as (
    select supplier_code, c_batch_no, key_text from valid group by all having count(*) > 1
)
select supplier_code, batch_no, supplier_sku, unit_cost_fen, key_text, c_product_name,
    business_date as received_date
from valid anti join twice using (supplier_code, c_batch_no, key_text)
union all
select supplier_code, batch_no, supplier_sku, unit_cost_fen, key_text, c_product_name,
    business_date
from (select * from valid semi join twice using (supplier_code, c_batch_no, key_text))
qualify row_number() over (
    partition by supplier_code, c_batch_no, key_text order by business_date desc, file_rank
) = 1;

drop table supplier_rows_today;

-- @step products
-- The product coding (int_product_names -> int_product_names_coded -> int_listings_mapped),
-- over every name the platform has met: both shops' listings (whole tables) and every product
-- name a supplier has written (lake raw lines before the day, and the day's files). A listing's
-- code depends on the other names only through the long-tail titles (a title written without its
-- currency word is the one brand with that title), so the supplier names enter as names alone.
create or replace temp table supplier_names as
select distinct product_name as source_name
from read_parquet(getvariable('lake_raw_supplier_files'), hive_partitioning = true)
where business_date < getvariable('day')
union
select distinct c_product_name from supplier_lines_today;

create or replace temp table product_names as
with unioned as (
    select 'main' as system, cast(goods.goods_id as varchar) as product_ref,
        goods.goods_id as listing_id, goods.goods_name as source_name,
        goods.retail_price_fen as stated_face_value_fen
    from goods
    union all
    select 'substation', cast(commodity_id as varchar), commodity_id, commodity_name,
        cast(null as bigint)
    from commodities
    union all
    select 'supplier', source_name, cast(null as bigint), source_name, cast(null as bigint)
    from supplier_names
),
normalised as (
    select *, normalise_product_name(source_name) as normalised_name from unioned
)
select *, name_before_face(normalised_name) as name_before_face,
    name_face_yuan(normalised_name) as name_face_yuan
from normalised;

create or replace temp table listing_skus as
with brand_keys as (
    select normalise_code_text(brand_name) as brand_key, brand_code from product_brands
    union
    select normalise_code_text(alias_text), code from product_aliases where alias_kind = 'brand'
),
period_labels as (
    select normalise_code_text(alias_text) as period_label, code as variant
    from product_aliases where alias_kind = 'period'
),
game_units as (
    select normalise_code_text(alias_text) as unit, code as category_code
    from product_aliases where alias_kind = 'game_unit'
),
name_aliases as (
    select normalise_product_name(alias_text) as normalised_name, code as sku_code
    from product_aliases where alias_kind = 'name'
),
period_matches as (
    select names.system, names.product_ref, names.source_name, period_labels.variant,
        period_labels.period_label
    from product_names as names
    inner join period_labels on ends_with(names.name_before_face, period_labels.period_label)
    qualify row_number() over (
        partition by names.system, names.product_ref, names.source_name
        order by length(period_labels.period_label) desc, period_labels.period_label
    ) = 1
),
parsed as (
    select names.*, period_matches.variant as period_variant,
        normalise_code_text(
            case when period_matches.period_label is null then names.name_before_face
            else left(names.name_before_face,
                length(names.name_before_face) - length(period_matches.period_label)) end
        ) as brand_key
    from product_names as names
    left join period_matches
        on names.system = period_matches.system and names.product_ref = period_matches.product_ref
        and names.source_name = period_matches.source_name
),
long_tail_keys as (
    select system, product_ref, source_name, replace(brand_key, '手游', '') as long_tail_key
    from parsed
    anti join brand_keys on parsed.brand_key = brand_keys.brand_key
),
long_tail_named as (
    select long_tail_keys.*, game_units.category_code,
        left(long_tail_keys.long_tail_key,
            length(long_tail_keys.long_tail_key) - length(game_units.unit)) as title
    from long_tail_keys
    inner join game_units
        on ends_with(long_tail_keys.long_tail_key, game_units.unit)
        and length(long_tail_keys.long_tail_key) > length(game_units.unit)
    qualify row_number() over (
        partition by long_tail_keys.system, long_tail_keys.product_ref, long_tail_keys.source_name
        order by length(game_units.unit) desc
    ) = 1
),
long_tail_brands as (
    select long_tail_key as brand_name, title, min(category_code) as category_code
    from long_tail_named group by long_tail_key, title
),
long_tail_titles as (
    select title, min(brand_name) as brand_name, min(category_code) as category_code,
        count(*) as brand_count
    from long_tail_brands group by title
),
long_tail_resolved as (
    select k.system, k.product_ref, k.source_name,
        coalesce(n.long_tail_key, t.brand_name) as brand_name,
        coalesce(n.category_code, t.category_code) as category_code,
        case when n.long_tail_key is not null then 1 else t.brand_count end as brand_count
    from long_tail_keys as k
    left join long_tail_named as n
        on k.system = n.system and k.product_ref = n.product_ref and k.source_name = n.source_name
    left join long_tail_titles as t on k.long_tail_key = t.title
),
branded as (
    select parsed.*,
        coalesce(bk.brand_code,
            case when r.brand_count = 1 then
                upper(left(r.category_code, 1)) || upper(left(md5(r.brand_name), 8)) end
        ) as brand_code,
        case when bk.brand_code is not null then b.category_code
            when r.brand_count = 1 then r.category_code end as category_code
    from parsed
    left join brand_keys as bk on parsed.brand_key = bk.brand_key
    left join product_brands as b on bk.brand_code = b.brand_code
    left join long_tail_resolved as r
        on parsed.system = r.system and parsed.product_ref = r.product_ref
        and parsed.source_name = r.source_name
    where parsed.system in ('main', 'substation')
),
ruled as (
    select branded.*,
        case when c.is_period_based then branded.period_variant
            when branded.period_variant is null then c.default_variant end as variant,
        case when c.is_period_based then p.face_value_yuan
            when branded.name_face_yuan is not null then branded.name_face_yuan
            when branded.stated_face_value_fen % 100 = 0 then branded.stated_face_value_fen // 100
        end as face_value_yuan
    from branded
    left join product_categories as c on branded.category_code = c.category_code
    left join product_periods as p
        on branded.category_code = p.category_code and branded.period_variant = p.variant
)
select ruled.system as shop, ruled.listing_id,
    coalesce(
        a.sku_code,
        case when ruled.brand_code is not null and ruled.variant is not null
                and ruled.face_value_yuan is not null
            then ruled.category_code || '-' || ruled.brand_code || '-'
                || printf('%04d', ruled.face_value_yuan) || '-' || ruled.variant end
    ) as sku_code
from ruled
left join name_aliases as a on ruled.normalised_name = a.normalised_name;
-- dim_products.category_code of a SKU is the category its code starts with (every coded name
-- of a SKU has the category of its code: the rule builds the code from it, an alias code is split)

-- @step orders
-- Orders of both shops read since `lo`, with their contracts' rules (a row that breaks one is
-- quarantined by the cycle and counts nowhere): test orders, broken rows and unknown products out.
create or replace temp table main_orders as
with typed as materialized (
    select
        p_int(id) as order_id, order_sn, goods_id as goods_id_text, p_int(goods_id) as listing_id,
        bad(coupon_id, p_int(coupon_id)) as bad_coupon_id, title, p_int(type) as type,
        p_yuan(goods_price) as unit_price_fen, p_int(buy_amount) as quantity,
        p_yuan(coupon_discount_price) as coupon_discount_fen,
        p_yuan(wholesale_discount_price) as wholesale_discount_fen,
        p_yuan(total_price) as total_price_fen, p_yuan(actual_price) as amount_fen,
        present(email) as has_email, info as delivered_keys_text, p_int(pay_id) as pay_id,
        bad(pay_id, p_int(pay_id)) as bad_pay_id, nullif(trim(trade_no), '') as channel_txn_no,
        p_int(status) as status, bad(coupon_ret_back, p_int(coupon_ret_back)) as bad_coupon_ret,
        p_ts(created_at) as created_at, p_ts(updated_at) as updated_at,
        p_ts(deleted_at) as deleted_at, bad(deleted_at, p_ts(deleted_at)) as bad_deleted_at
    from src_main_orders
)
select order_id, 'main' as shop, order_sn as native_order_no, listing_id, quantity,
    unit_price_fen, coupon_discount_fen, amount_fen, type = 2 as is_manual, pay_id, channel_txn_no,
    case status when 1 then 'unpaid' when -1 then 'expired' when 2 then 'paid'
        when 3 then 'processing' when 4 then 'delivered' when 5 then 'delivery_failed'
        when 6 then 'abnormal' end as order_status,
    status in (2, 3, 4, 5, 6) as is_paid_in_shop,
    created_at, updated_at, case when status = 4 then updated_at end as shop_completed_at,
    delivered_keys_text
from typed
where order_id is not null and regexp_matches(order_sn, '^[A-Za-z0-9]{16}$')
    and listing_id is not null and goods_id_text in (select id from src_main_goods)
    and not bad_coupon_id and title is not null and not starts_with(title, '测试订单')
    and type in (1, 2) and unit_price_fen >= 0 and quantity >= 1 and coupon_discount_fen >= 0
    and wholesale_discount_fen >= 0 and total_price_fen >= 0 and amount_fen > 0
    and has_email and not bad_pay_id and status in (1, 2, 3, 4, 5, 6, -1) and not bad_coupon_ret
    and created_at >= timestamp '2000-01-01' and created_at <= getvariable('now_limit')
    and updated_at >= timestamp '2000-01-01' and updated_at <= getvariable('now_limit')
    and not bad_deleted_at and plausible(deleted_at);

create or replace temp table sub_orders as
with typed as materialized (
    select
        p_int(id) as order_id, p_int(owner) as owner, bad(user_id, p_int(user_id)) as bad_user_id,
        trade_no, p_yuan(amount) as amount_fen, commodity_id as commodity_id_text,
        p_int(commodity_id) as listing_id, p_int(card_num) as quantity, p_int(pay_id) as pay_id,
        p_epoch(create_time) as created_at, bad(create_device, p_int(create_device)) as bad_device,
        p_epoch(pay_time) as pay_time, bad(pay_time, p_epoch(pay_time)) as bad_pay_time,
        p_int(status) as status, contact, p_int(delivery_status) as delivery_status,
        bad(coupon_id, p_int(coupon_id)) as bad_coupon_id
    from src_sub_orders
)
select order_id, 'substation' as shop, trade_no as native_order_no, listing_id, quantity,
    amount_fen, pay_id, status, delivery_status, created_at, pay_time
from typed
where order_id is not null and owner is not null and not bad_user_id
    and regexp_matches(trade_no, '^\d{18,19}$') and amount_fen > 0
    and listing_id is not null and commodity_id_text in (select id from src_sub_commodity)
    and quantity >= 1 and pay_id is not null
    and created_at >= timestamp '2000-01-01' and created_at <= getvariable('now_limit')
    and not bad_device and not bad_pay_time and plausible(pay_time) and not_future(pay_time)
    and status in (0, 1) and present(contact) and contact <> 'test'
    and delivery_status in (0, 1) and not bad_coupon_id;

-- the orders read that were created before the day: their versions and statement lines landed
-- before the day are in the lake's partitions from their creation day on
set variable older_from = (
    select coalesce(min(bdate(created_at)), getvariable('day'))
    from (
        select created_at from main_orders union all select created_at from sub_orders
    )
    where created_at < getvariable('d_start')
);

-- the first version of an older main-shop order seen in a paid status (docs/metrics.md#paid_at:
-- paid_at until
-- a statement holds the payment): today's row and the versions the lake landed before the day
create or replace temp table main_first_paid as
with older as (
    select order_id, updated_at from main_orders where created_at < getvariable('d_start')
),
landed as (
    select v.id as order_id, cast(v.updated_at as timestamp) as updated_at
    from read_parquet(getvariable('lake_raw_main_orders_files'), hive_partitioning = true) as v
    semi join older on v.id = older.order_id
    where v.business_date between getvariable('older_from') and getvariable('day') - 1
        and v.status in (2, 3, 4, 5, 6)
)
select order_id, min(updated_at) as first_seen_paid_at
from (
    select order_id, updated_at from main_orders where is_paid_in_shop
    union all
    select order_id, updated_at from landed
)
group by order_id;

-- int_orders_unified, for the orders read
create or replace temp table orders_o as
with unioned as (
    select m.shop, m.order_id, m.native_order_no, m.listing_id, m.quantity, m.unit_price_fen,
        m.coupon_discount_fen, m.amount_fen, m.is_manual, m.pay_id, m.channel_txn_no,
        m.order_status, m.is_paid_in_shop, m.created_at, cast(null as timestamp) as shop_paid_at,
        case when m.is_paid_in_shop then f.first_seen_paid_at end as first_seen_paid_at,
        m.shop_completed_at, m.delivered_keys_text
    from main_orders as m
    left join main_first_paid as f on m.order_id = f.order_id
    union all
    select s.shop, s.order_id, s.native_order_no, s.listing_id, s.quantity,
        cast(round(s.amount_fen / s.quantity) as bigint), 0, s.amount_fen,
        coalesce(c.is_manual, false), s.pay_id, cast(null as varchar),
        case when s.status = 0 then 'unpaid' when s.delivery_status = 1 then 'delivered'
            else 'paid' end,
        s.status = 1, s.created_at, s.pay_time, s.pay_time, cast(null as timestamp),
        cast(null as varchar)
    from sub_orders as s
    left join commodities as c on s.listing_id = c.commodity_id
)
select std_order_no(u.shop, u.native_order_no) as order_no, u.*, bdate(u.created_at) as created_date,
    pm.pay_code, pm.account_key, pm.channel
from unioned as u
left join pay_methods as pm on u.shop = pm.shop and u.pay_id = pm.pay_id;

drop table main_orders;
drop table sub_orders;
drop table main_first_paid;

-- @step statements
-- The statement files of the day and later. Alipay 业务明细 is GBK: read as Latin-1 (every field
-- the marts need is ASCII; 业务类型 is compared with the GBK bytes of 交易 / 退款); ID cells end in a
-- tab, and in today's layout every text cell does. WeChat bills are UTF-8 with every value backtick-prefixed and a summary block at the end.
-- A file whose lines do not sum to its own footer / summary is rejected whole; of the versions of
-- one logical file (re-sends, corrections) the last valid one counts.
create or replace temp table stmt_typed as
with raw as (
    select
        'alipay' as channel, filename as file,
        trim(txn_no, e'\t ') as txn_no, trim(merchant_order_no, e'\t ') as merchant_order_no,
        case rtrim(business_type, e'\t') when getvariable('alipay_pay') then 'payment'
            when getvariable('alipay_refund') then 'refund' end as line_type,
        nullif(trim(refund_batch_no, e'\t '), '') as merchant_refund_no,
        cast(null as varchar) as channel_refund_no,
        rtrim(created_at, e'\t') as created_text, rtrim(completed_at, e'\t') as completed_text,
        merchant_received as amount_text, cast(null as varchar) as refund_text,
        service_fee as fee_text, business_type is not null and line_type is not null as type_ok,
        p_yuan(order_amount) is not null
            and num_ok(alipay_red_packet)
            and num_ok(jifenbao)
            and num_ok(alipay_discount)
            and num_ok(merchant_discount)
            and num_ok(voucher_amount)
            and num_ok(merchant_red_packet)
            and num_ok(card_amount)
            and num_ok(profit_share) as others_ok
    from read_csv(getvariable('alipay_files'), encoding = 'latin-1', comment = '#', header = true,
        auto_detect = false, delim = ',', quote = '"', escape = '"', filename = true,
        columns = {'txn_no': 'VARCHAR', 'merchant_order_no': 'VARCHAR',
            'business_type': 'VARCHAR', 'product_name': 'VARCHAR', 'created_at': 'VARCHAR',
            'completed_at': 'VARCHAR', 'store_no': 'VARCHAR', 'store_name': 'VARCHAR',
            'operator': 'VARCHAR', 'terminal_no': 'VARCHAR', 'counterparty': 'VARCHAR',
            'order_amount': 'VARCHAR', 'merchant_received': 'VARCHAR',
            'alipay_red_packet': 'VARCHAR', 'jifenbao': 'VARCHAR', 'alipay_discount': 'VARCHAR',
            'merchant_discount': 'VARCHAR', 'voucher_amount': 'VARCHAR',
            'voucher_name': 'VARCHAR', 'merchant_red_packet': 'VARCHAR',
            'card_amount': 'VARCHAR', 'refund_batch_no': 'VARCHAR', 'service_fee': 'VARCHAR',
            'profit_share': 'VARCHAR', 'remark': 'VARCHAR'})
    union all
    select
        'wechat', filename, ltrim(wx_order_no, '`'), ltrim(merchant_order_no, '`'),
        case ltrim(trade_state, '`') when 'SUCCESS' then 'payment' when 'REFUND' then 'refund' end,
        nullif(nullif(trim(ltrim(merchant_refund_no, '`')), ''), '0'),
        nullif(nullif(trim(ltrim(wx_refund_no, '`')), ''), '0'),
        ltrim(traded_at, '`'), ltrim(traded_at, '`'), ltrim(settlement_amount, '`'),
        ltrim(refund_amount, '`'), ltrim(fee, '`'),
        -- REVOKED is an allowed state that is neither a payment nor a refund
        ltrim(trade_state, '`') in ('SUCCESS', 'REFUND', 'REVOKED'),
        ltrim(mch_id, '`') is not null
            and ltrim(refund_amount, '`') is not null
            and num_ok(ltrim(refund_amount, '`'))
            and num_ok(ltrim(voucher_amount, '`')) and num_ok(ltrim(voucher_refund_amount, '`'))
            and num_ok(ltrim(order_amount, '`')) and num_ok(ltrim(requested_refund_amount, '`'))
            and coalesce(ltrim(currency, '`') = 'CNY', true)
            and coalesce(regexp_matches(ltrim(fee_rate, '`'), '^\d+(\.\d+)?%$'), true)
    from read_csv(getvariable('wechat_files'), header = true, auto_detect = false, delim = ',',
        quote = '"', escape = '"', filename = true, null_padding = true,
        columns = {'traded_at': 'VARCHAR', 'app_id': 'VARCHAR', 'mch_id': 'VARCHAR',
            'sub_mch_id': 'VARCHAR', 'device_no': 'VARCHAR', 'wx_order_no': 'VARCHAR',
            'merchant_order_no': 'VARCHAR', 'openid': 'VARCHAR', 'trade_type': 'VARCHAR',
            'trade_state': 'VARCHAR', 'bank': 'VARCHAR', 'currency': 'VARCHAR',
            'settlement_amount': 'VARCHAR', 'voucher_amount': 'VARCHAR', 'wx_refund_no': 'VARCHAR',
            'merchant_refund_no': 'VARCHAR', 'refund_amount': 'VARCHAR',
            'voucher_refund_amount': 'VARCHAR', 'refund_type': 'VARCHAR',
            'refund_state': 'VARCHAR', 'product_name': 'VARCHAR', 'attach': 'VARCHAR',
            'fee': 'VARCHAR', 'fee_rate': 'VARCHAR', 'order_amount': 'VARCHAR',
            'requested_refund_amount': 'VARCHAR', 'fee_remark': 'VARCHAR'})
    -- the summary block (its header and its one row) is not a line: it has fewer than ten fields
    where trade_state is not null
)
select file, channel, txn_no, merchant_order_no, line_type, merchant_refund_no, channel_refund_no,
    p_ts(created_text) as created_at, p_ts(completed_text) as completed_at,
    case when channel = 'wechat' and line_type = 'refund' then -p_yuan(refund_text)
        else p_yuan(amount_text) end as amount_fen,
    -- exact fen, as the footer check sums them (an amount that is not one rejects the file)
    round(try_cast(trim(amount_text) as decimal(24, 6)) * 100) as amount_dec,
    round(try_cast(trim(refund_text) as decimal(24, 6)) * 100) as refund_dec,
    round(try_cast(trim(fee_text) as decimal(24, 6)) * 100) as fee_dec,
    bad(amount_text, try_cast(trim(amount_text) as decimal(24, 6)))
        or bad(refund_text, try_cast(trim(refund_text) as decimal(24, 6)))
        or bad(fee_text, try_cast(trim(fee_text) as decimal(24, 6))) as has_bad_amount,
    -- the contract's rules for a line
    regexp_matches(txn_no, '^\d{28}$') and present(merchant_order_no) and type_ok and others_ok
        and p_ts(created_text) >= timestamp '2000-01-01'
        and p_ts(completed_text) >= timestamp '2000-01-01'
        and p_yuan(amount_text) is not null and p_yuan(fee_text) is not null as is_valid
from raw;

-- the files that count: sums equal to the footer, the last valid version of each logical file
create or replace temp table stmt_effective as
with sums as (
    select file,
        count(*) filter (where channel = 'alipay' and line_type = 'payment') as pay_lines,
        sum(amount_dec) filter (where channel = 'alipay' and line_type = 'payment') as pay_fen,
        count(*) filter (where channel = 'alipay' and line_type = 'refund') as refund_lines,
        sum(amount_dec) filter (where channel = 'alipay' and line_type = 'refund') as refund_fen,
        count(*) as lines, sum(amount_dec) as settle_fen, sum(refund_dec) as wx_refund_fen,
        sum(fee_dec) as fee_fen, bool_or(has_bad_amount) as has_bad_amount
    from stmt_typed group by file
),
checked as (
    select f.*,
        f.parse_ok and not coalesce(s.has_bad_amount, false) and case f.channel
            when 'alipay' then coalesce(s.pay_lines, 0) = f.stated_pay_lines
                and coalesce(s.pay_fen, 0) = f.stated_pay_fen
                and coalesce(s.refund_lines, 0) = f.stated_refund_lines
                and coalesce(s.refund_fen, 0) = f.stated_refund_fen
            else coalesce(s.lines, 0) = f.stated_lines
                and coalesce(s.settle_fen, 0) = f.stated_settle_fen
                and coalesce(s.wx_refund_fen, 0) = f.stated_refund_fen
                and coalesce(s.fee_fen, 0) = f.stated_fee_fen
        end as is_valid
    from stmt_files as f
    left join sums as s on f.file = s.file
)
select file, channel, account_no, business_date from checked
where is_valid
qualify row_number() over (partition by logical_key order by version_rank desc) = 1;

-- the lines of the day's files (contract rules applied, one per line key: a later statement day
-- wins, as in staging) and, for the orders read that were created before the day, the payment
-- lines the lake landed on their creation day and the next (all that can decide their payment)
create or replace temp table stmt_lines as
with today as materialized (
    select t.channel, e.account_no, t.txn_no as channel_txn_no,
        trim(t.merchant_order_no) as merchant_order_no, t.line_type, t.merchant_refund_no,
        t.channel_refund_no, t.created_at, t.completed_at, t.amount_fen,
        e.business_date as statement_date, true as is_today,
        coalesce(case when t.channel = 'alipay' then t.merchant_refund_no
            else t.channel_refund_no end, '') as refund_key
    from stmt_typed as t
    inner join stmt_effective as e on t.file = e.file
    where t.is_valid
),
older_orders as (
    select shop, order_no, created_date from orders_o where created_at < getvariable('d_start')
),
older_days as (
    select distinct unnest([created_date, created_date + 1]) as day from older_orders
),
landed_raw as materialized (
    select ca.shop, ca.account_key, l.*
    from (
        select 'alipay' as channel, _account as account_no, trim(txn_no) as channel_txn_no,
            trim(merchant_order_no) as merchant_order_no, 'payment' as line_type,
            cast(null as varchar) as merchant_refund_no, cast(null as varchar) as channel_refund_no,
            cast(created_at as timestamp) as created_at,
            cast(completed_at as timestamp) as completed_at, merchant_received_fen as amount_fen,
            business_date as statement_date, false as is_today, '' as refund_key
        from read_parquet(getvariable('lake_raw_alipay_files'), hive_partitioning = true)
        where business_date between getvariable('older_from') and getvariable('day') - 1
            and business_date in (select day from older_days) and business_type = '交易'
        union all
        select 'wechat', _account, trim(wx_order_no), trim(merchant_order_no), 'payment', null,
            null, cast(traded_at as timestamp), cast(traded_at as timestamp),
            settlement_amount_fen, business_date, false, ''
        from read_parquet(getvariable('lake_raw_wechat_files'), hive_partitioning = true)
        where business_date between getvariable('older_from') and getvariable('day') - 1
            and business_date in (select day from older_days) and trade_state = 'SUCCESS'
    ) as l
    inner join channel_accounts as ca
        on l.account_no = ca.statement_account_no and l.channel = ca.channel
),
-- only the landed lines that can belong to one of those orders: as sent, or, for a number that
-- has not the shape of a shop's own (an affix can only be on such a one), without an affix
landed_candidates as (
    select l.*, l.merchant_order_no as candidate_no from landed_raw as l
    union all
    select l.*,
        case when a.position = 'prefix' and starts_with(l.merchant_order_no, a.affix)
                then substr(l.merchant_order_no, length(a.affix) + 1)
            when a.position = 'suffix' and ends_with(l.merchant_order_no, a.affix)
                then substr(l.merchant_order_no, 1, length(l.merchant_order_no) - length(a.affix))
        end
    from landed_raw as l
    inner join order_no_affixes as a on l.account_key = a.account_key
    where not is_native_order_no(l.shop, l.merchant_order_no)
),
landed as (
    select distinct c.* exclude (shop, account_key, candidate_no)
    from landed_candidates as c
    semi join older_orders as o
        on c.shop = o.shop and std_order_no(c.shop, c.candidate_no) = o.order_no
),
unioned as (
    select * from today
    union all
    select * from landed
),
twice as (
    select channel, account_no, channel_txn_no, line_type, refund_key
    from unioned group by all having count(*) > 1
)
select * exclude (refund_key) from unioned
anti join twice using (channel, account_no, channel_txn_no, line_type, refund_key)
union all
select * exclude (refund_key) from (
    select * from unioned
    semi join twice using (channel, account_no, channel_txn_no, line_type, refund_key)
)
qualify row_number() over (
    partition by channel, account_no, channel_txn_no, line_type, refund_key
    order by statement_date desc
) = 1;

drop table stmt_typed;

-- @step match_lines
-- int_statement_lines: the merchant order number as sent, else with one of the account's known
-- affixes removed (when what remains has the shape of the shop's numbers), against the orders
-- read and, for the lines that match none of them, the older orders the lake holds (a refund of
-- an order paid days ago). Most lines carry the number as sent: they are matched in one join.
create or replace temp table lines_keyed as
select ca.account_key || ':' || l.channel_txn_no || ':' || l.line_type || ':'
        || coalesce(l.merchant_refund_no, '') as line_key,
    ca.account_key, ca.shop, l.*
from stmt_lines as l
inner join channel_accounts as ca
    on l.account_no = ca.statement_account_no and l.channel = ca.channel;

drop table stmt_lines;

create or replace temp table read_match as
select l.line_key, o.order_id, o.order_no
from lines_keyed as l
inner join orders_o as o
    on l.shop = o.shop and std_order_no(l.shop, l.merchant_order_no) = o.order_no;

create or replace temp table unmatched_candidates as
with unmatched as (
    select * from lines_keyed anti join read_match using (line_key)
)
select line_key, shop, is_today, merchant_order_no as candidate_no, 'as_sent' as match_rule,
    0 as rule_rank
from unmatched
union all
select u.line_key, u.shop, u.is_today,
    case when a.position = 'prefix' and starts_with(u.merchant_order_no, a.affix)
            then substr(u.merchant_order_no, length(a.affix) + 1)
        when a.position = 'suffix' and ends_with(u.merchant_order_no, a.affix)
            then substr(u.merchant_order_no, 1, length(u.merchant_order_no) - length(a.affix))
    end,
    a.position || '_removed:' || a.affix, 1
from unmatched as u
inner join order_no_affixes as a on u.account_key = a.account_key;

-- older orders (created before the day) that the day's unmatched lines or the refunds read name:
-- their state as the cycle published it
create or replace temp table lake_orders as
with wanted as (
    select std_order_no(shop, candidate_no) as order_no from unmatched_candidates
    where candidate_no is not null and is_today
    union
    select 'M-' || upper(trim(order_sn)) from src_main_refunds
)
select o.order_no, o.shop, o.order_id, o.listing_id, o.is_paid, o.supplier_code, o.channel,
    o.payment_txn_no
from read_parquet(getvariable('lake_fct_orders_files'), hive_partitioning = true) as o
semi join wanted on o.order_no = wanted.order_no
anti join orders_o on o.order_no = orders_o.order_no
where o.business_date < getvariable('day');

create or replace temp table statement_lines as
with universe as (
    select shop, order_no, order_id, true as is_read from orders_o
    union all
    select shop, order_no, order_id, false from lake_orders
),
stripped_match as (
    select c.line_key, u.order_id, u.order_no, u.is_read
    from unmatched_candidates as c
    inner join universe as u
        on c.shop = u.shop and std_order_no(c.shop, c.candidate_no) = u.order_no
    where c.candidate_no is not null
    qualify row_number() over (
        partition by c.line_key
        order by c.rule_rank, is_native_order_no(c.shop, c.candidate_no) desc, c.match_rule
    ) = 1
),
matches as (
    select line_key, order_id, order_no, true as is_read from read_match
    union all
    select * from stripped_match
)
select l.*, m.order_id, m.order_no, m.is_read
from lines_keyed as l
inner join matches as m using (line_key);

drop table lines_keyed;
drop table read_match;
drop table unmatched_candidates;

-- @step payments
-- int_order_payments for the orders read: paid when the shop shows it or a statement holds the
-- payment; the primary payment is the transaction the shop recorded, else the earliest.
create or replace temp table payments as
with ranked as (
    select l.shop, l.order_id, l.channel_txn_no, l.completed_at, l.amount_fen,
        row_number() over (
            partition by l.shop, l.order_id
            order by (l.channel_txn_no = o.channel_txn_no) desc nulls last, l.completed_at,
                l.channel_txn_no
        ) as payment_rank,
        count(*) over (partition by l.shop, l.order_id) as payment_lines
    from statement_lines as l
    inner join orders_o as o on l.shop = o.shop and l.order_id = o.order_id
    where l.line_type = 'payment' and l.is_read
),
primary_payment as (select * from ranked where payment_rank = 1)
select o.shop, o.order_id,
    o.is_paid_in_shop or p.order_id is not null as is_paid,
    not o.is_paid_in_shop and p.order_id is not null as is_lost_callback,
    case when o.shop_paid_at is not null then o.shop_paid_at
        when p.completed_at is not null then p.completed_at
        when o.is_paid_in_shop then o.first_seen_paid_at end as paid_at,
    case when o.shop_paid_at is not null then 'shop'
        when p.completed_at is not null then 'statement'
        when o.is_paid_in_shop then 'shop_status_change' end as paid_at_source,
    p.channel_txn_no as payment_txn_no, p.amount_fen as channel_amount_fen,
    coalesce(p.payment_lines, 0) as payment_lines,
    coalesce(p.payment_lines, 0) > 1 as is_duplicate_payment,
    p.amount_fen is not null and p.amount_fen <> o.amount_fen as is_amount_mismatch,
    o.is_paid_in_shop and p.order_id is null as is_missing_in_statement
from orders_o as o
left join primary_payment as p on o.shop = p.shop and o.order_id = p.order_id;

-- @step refunds
-- int_refunds_unified for the orders read and the older orders above: the main shop's records
-- (reason from the seed) and the substation's refund lines (a refund of a transaction other than
-- the order's primary payment pays back a duplicate charge).
create or replace temp table refunds as
with main_src as (
    select refund_no, order_sn, p_yuan(amount) as amount_fen, trim(reason) as reason_text,
        p_int(status) as status, p_ts(created_at) as requested_at,
        p_ts(succeeded_at) as succeeded_at
    from src_main_refunds
    where req(id, p_int(id)) and refund_no is not null and trim(refund_no) <> ''
        and order_sn is not null and trim(order_sn) <> ''
        and req(amount, p_yuan(amount)) and p_yuan(amount) > 0 and reason is not null
        and req(status, p_int(status)) and p_int(status) in (0, 1, 2)
        and req(created_at, p_ts(created_at)) and plausible(p_ts(created_at))
        and not_future(p_ts(created_at))
        and opt(succeeded_at, p_ts(succeeded_at)) and plausible(p_ts(succeeded_at))
        and not_future(p_ts(succeeded_at))
),
known_orders as (
    select shop, order_no, order_id, payment_txn_no, true as is_read
    from orders_o join payments using (shop, order_id)
    union all
    select shop, order_no, order_id, payment_txn_no, false from lake_orders
)
select m.refund_no, o.shop, o.order_id, o.order_no, o.is_read, m.amount_fen,
    coalesce(rr.reason_code, 'other') as reason_code,
    case m.status when 1 then 'succeeded' when 2 then 'failed' else 'pending' end as refund_status,
    m.requested_at, case when m.status = 1 then m.succeeded_at end as succeeded_at
from main_src as m
inner join known_orders as o on o.shop = 'main' and 'M-' || upper(trim(m.order_sn)) = o.order_no
left join refund_reasons as rr on m.reason_text = rr.reason_text
union all
select coalesce(l.merchant_refund_no, l.channel_refund_no, l.channel_txn_no), l.shop,
    l.order_id, l.order_no, l.is_read, -l.amount_fen,
    case when o.payment_txn_no is not null and l.channel_txn_no <> o.payment_txn_no
        then 'duplicate_payment' else 'unknown' end,
    'succeeded', l.created_at, l.completed_at
from statement_lines as l
left join known_orders as o on l.shop = o.shop and l.order_id = o.order_id
where l.line_type = 'refund' and l.shop = 'substation';

-- @step keys
-- Card keys read (every key with a movement on or after the day), in the shape of
-- int_card_keys_costed: status, times, the order a sold key went to (main: through the order's
-- delivered keys text; substation: card.order_id), and its cost and supplier. A key is matched by
-- its keyed hash, as the lake holds it (card_key_hash: trimmed, then hashed).
create or replace temp table keys_read as
with main_typed as materialized (
    select p_int(id) as card_key_id, p_int(goods_id) as listing_id, p_int(status) as status,
        bad(is_loop, p_int(is_loop)) as bad_is_loop, card_key_hash(carmi) as key_text,
        p_ts(created_at) as imported_at, p_ts(updated_at) as updated_at,
        p_ts(deleted_at) as deleted_at, bad(deleted_at, p_ts(deleted_at)) as bad_deleted_at
    from src_main_carmis
),
main_keys as (
    select 'main' as shop, card_key_id, listing_id, key_text,
        case when deleted_at is not null then 'voided' when status = 2 then 'sold'
            else 'in_stock' end as key_status,
        imported_at, case when status = 2 and deleted_at is null then updated_at end as sold_at,
        deleted_at as voided_at
    from main_typed
    where card_key_id is not null and listing_id is not null and status in (1, 2)
        and not bad_is_loop and key_text <> ''
        and imported_at >= timestamp '2000-01-01' and imported_at <= getvariable('now_limit')
        and updated_at >= timestamp '2000-01-01' and updated_at <= getvariable('now_limit')
        and not bad_deleted_at and plausible(deleted_at)
),
sub_typed as materialized (
    select p_int(id) as card_key_id, bad(owner, p_int(owner)) as bad_owner,
        p_int(commodity_id) as listing_id, card_key_hash(secret) as key_text,
        p_epoch(create_time) as imported_at, p_epoch(purchase_time) as purchase_time,
        bad(purchase_time, p_epoch(purchase_time)) as bad_purchase_time,
        p_int(order_id) as order_id, bad(order_id, p_int(order_id)) as bad_order_id,
        p_int(status) as status
    from src_sub_card
),
sub_keys as (
    select 'substation' as shop, card_key_id, listing_id, key_text,
        case status when 1 then 'sold' when 2 then 'voided' else 'in_stock' end as key_status,
        imported_at, case when status = 1 then purchase_time end as sold_at,
        case when status = 2 then imported_at end as voided_at,
        case when status = 1 then order_id end as sub_order_id
    from sub_typed
    where card_key_id is not null and not bad_owner and listing_id is not null
        and key_text <> ''
        and imported_at >= timestamp '2000-01-01' and imported_at <= getvariable('now_limit')
        and not bad_purchase_time and plausible(purchase_time) and not_future(purchase_time)
        and not bad_order_id and status in (0, 1, 2)
),
deliveries as (
    select distinct order_id, card_key_hash(delivered_line) as key_text
    from (
        select order_id, unnest(string_split(delivered_keys_text, chr(10))) as delivered_line
        from orders_o
        where shop = 'main' and delivered_keys_text is not null
    )
)
select k.shop || '-' || k.card_key_id as key_id, k.shop, k.card_key_id, k.listing_id,
    k.key_text, k.key_status, k.imported_at, k.sold_at, k.voided_at, d.order_id
from main_keys as k
left join deliveries as d on k.key_text = d.key_text and k.key_status = 'sold'
union all
select shop || '-' || card_key_id, shop, card_key_id, listing_id, key_text, key_status,
    imported_at, sold_at, voided_at, sub_order_id
from sub_keys;

-- what the published ledger already holds for these keys (to be taken out and recomputed)
create or replace temp table ledger_read as
select m.key_id, m.movement, m.business_date, m.shop, m.sku_code, m.units, m.value_fen,
    m.cost_fen, m.supplier_code
from read_parquet(getvariable('lake_ledger_files'), hive_partitioning = true) as m
semi join keys_read on m.key_id = keys_read.key_id
where m.business_date < getvariable('day');

-- the cost and supplier of every key read: the ledger's (published before the day), else its
-- supplier line (the day's files, or the lake's raw lines of the day the key was imported)
create or replace temp table published_costs as
select key_id, any_value(cost_fen) as cost_fen, any_value(supplier_code) as supplier_code
from ledger_read where movement = 'received' group by key_id;

create or replace temp table unpublished as
select k.key_id, k.key_text, bdate(k.imported_at) as imported_date
from keys_read as k anti join published_costs as p on k.key_id = p.key_id;

-- the landed supplier lines are read from the first day such a key was imported (none when the
-- ledger held every key imported before the day: then no partition is read)
set variable unpublished_from = (
    select coalesce(min(imported_date), getvariable('day')) from unpublished
    where imported_date < getvariable('day')
);

create or replace temp table key_costs as
with landed_lines as (
    -- the landed card_secret is already the keyed hash of the key as the shops store it
    select _account as supplier_code, unit_cost_fen, card_secret as key_text,
        business_date as received_date
    from read_parquet(getvariable('lake_raw_supplier_files'), hive_partitioning = true)
    where business_date between getvariable('unpublished_from') and getvariable('day') - 1
        and business_date in (select distinct imported_date from unpublished)
),
lines as (
    select supplier_code, key_text, unit_cost_fen, received_date from supplier_lines_today
    semi join unpublished on supplier_lines_today.key_text = unpublished.key_text
    union all
    select supplier_code, key_text, unit_cost_fen, received_date from landed_lines
    semi join unpublished on landed_lines.key_text = unpublished.key_text
),
-- int_card_keys_costed: a key's first line by receipt day (then supplier)
first_line as (
    select * from lines
    qualify row_number() over (partition by key_text order by received_date, supplier_code) = 1
)
select key_id, cost_fen, supplier_code from published_costs
union all
select u.key_id, f.unit_cost_fen, f.supplier_code
from unpublished as u left join first_line as f on u.key_text = f.key_text;

create or replace temp table keys_costed as
select k.*, c.cost_fen, c.supplier_code, s.sku_code
from keys_read as k
left join key_costs as c on k.key_id = c.key_id
left join listing_skus as s on k.shop = s.shop and k.listing_id = s.listing_id;

drop table keys_read;
drop table supplier_lines_today;
drop table published_costs;
drop table unpublished;

-- @step fct_orders
-- fct_orders for the orders read (those created on the day are the mart's rows for the day)
create or replace temp table as_of as
select max(created_at) as data_as_of from orders_o;

create or replace temp table orders_f as
with delivered_keys as (
    select shop, order_id, count(*) as delivered_keys,
        cast(sum(cost_fen) as bigint) as delivered_cost_fen, max(sold_at) as last_key_sold_at,
        arg_min(supplier_code, card_key_id) as supplier_code
    from keys_costed where order_id is not null group by shop, order_id
),
order_refunds as (
    select shop, order_id,
        count(*) filter (where refund_status = 'succeeded') as refunds_succeeded,
        cast(coalesce(sum(amount_fen) filter (where refund_status = 'succeeded'), 0) as bigint)
            as refunded_fen,
        min(succeeded_at) as first_refund_succeeded_at,
        arg_min(reason_code, coalesce(succeeded_at, requested_at))
            filter (where refund_status = 'succeeded') as first_refund_reason
    from refunds where is_read group by shop, order_id
),
joined as (
    select o.*, p.* exclude (shop, order_id),
        case when o.shop = 'main' and o.order_status = 'delivered' then o.shop_completed_at
            when o.shop = 'substation' and not o.is_manual then dk.last_key_sold_at
        end as delivered_at,
        coalesce(dk.delivered_keys, 0) as delivered_keys, dk.delivered_cost_fen,
        dk.supplier_code, coalesce(r.refunds_succeeded, 0) as refunds_succeeded,
        coalesce(r.refunded_fen, 0) as refunded_fen, r.first_refund_succeeded_at,
        r.first_refund_reason, s.sku_code, as_of.data_as_of
    from orders_o as o
    cross join as_of
    left join payments as p on o.shop = p.shop and o.order_id = p.order_id
    left join listing_skus as s on o.shop = s.shop and o.listing_id = s.listing_id
    left join delivered_keys as dk on o.shop = dk.shop and o.order_id = dk.order_id
    left join order_refunds as r on o.shop = r.shop and o.order_id = r.order_id
)
select order_no, shop, order_id, native_order_no,
    cast(null as varchar) as user_key,  -- omitted: needs the whole identity graph
    listing_id, sku_code, quantity, unit_price_fen, coupon_discount_fen, amount_fen, is_manual,
    channel, account_key, order_status, created_at, created_date, created_date as business_date,
    is_paid, paid_at, bdate(paid_at) as paid_date, paid_at_source, payment_txn_no,
    channel_amount_fen, payment_lines, is_paid_in_shop, is_lost_callback, is_duplicate_payment,
    is_amount_mismatch, is_missing_in_statement, order_status = 'delivered' as is_delivered,
    delivered_at,
    case when not is_manual and delivered_at is not null
        then cast(epoch(delivered_at) - epoch(paid_at) as bigint) end as delivery_seconds,
    delivered_keys, delivered_cost_fen, supplier_code,
    is_paid_in_shop and not is_manual and (
        (delivered_at is null and epoch(data_as_of) - epoch(paid_at) > 600)
        or epoch(delivered_at) - epoch(paid_at) > 600
    ) as is_stockout,
    refunds_succeeded, refunded_fen, refunds_succeeded > 0 as has_refund,
    first_refund_succeeded_at, first_refund_reason
from joined;

-- a view: the rows are written once, by the runner's COPY
create or replace temp view out_fct_orders as
select * replace (tz(created_at) as created_at, tz(paid_at) as paid_at,
    tz(delivered_at) as delivered_at, tz(first_refund_succeeded_at) as first_refund_succeeded_at)
from orders_f
where created_date = getvariable('day');

-- @step kpi_sales_daily
-- created and converted: orders created on the day; paid and GMV: orders paid on the day (which
-- may have been created the day before, or days before when no statement holds the payment)
create or replace temp table out_kpi_sales_daily as
with scoped as (
    select shop, created_date, paid_date, is_paid, amount_fen from orders_f
    union all
    select 'all', created_date, paid_date, is_paid, amount_fen from orders_f
),
shops as (select unnest(['all', 'main', 'substation']) as shop),
created as (
    select shop, count(*) as created_orders, count(*) filter (where is_paid) as converted_orders
    from scoped where created_date = getvariable('day') group by shop
),
paid as (
    select shop, count(*) as paid_orders, cast(sum(amount_fen) as bigint) as gmv_fen
    from scoped where is_paid and paid_date = getvariable('day') group by shop
)
select getvariable('day') as business_date, shops.shop,
    coalesce(created.created_orders, 0) as created_orders,
    coalesce(created.converted_orders, 0) as converted_orders,
    coalesce(paid.paid_orders, 0) as paid_orders, coalesce(paid.gmv_fen, 0) as gmv_fen,
    cast(null as bigint) as buyers,  -- omitted: distinct unified users (identity graph)
    cast(null as bigint) as new_buyers,  -- omitted: needs every buyer's first paid day
    created.converted_orders / nullif(created.created_orders, 0) as conversion_rate,
    paid.gmv_fen / nullif(paid.paid_orders, 0) as avg_order_value_fen,
    cast(null as double) as customer_unit_price_fen  -- omitted: gmv / buyers
from shops
left join created on shops.shop = created.shop
left join paid on shops.shop = paid.shop;

-- @step kpi_refunds_daily
-- The payment-day cohort of the day (orders paid on the day, with every refund known now) and the
-- refunds settled on the day (of orders paid on any day), overall and by shop, sku, category,
-- supplier (of the delivered key), channel and reason.
create or replace temp table paid_orders as
select order_no, paid_date, amount_fen, has_refund, refunded_fen, shop,
    coalesce(sku_code, 'unmapped') as sku_code,
    coalesce(split_part(sku_code, '-', 1), 'unmapped') as category_code,
    coalesce(supplier_code, 'none') as supplier_code, coalesce(channel, 'unknown') as channel
from orders_f where is_paid
union all
select l.order_no, null, null, null, null, l.shop, coalesce(s.sku_code, 'unmapped'),
    coalesce(split_part(s.sku_code, '-', 1), 'unmapped'), coalesce(l.supplier_code, 'none'),
    coalesce(l.channel, 'unknown')
from lake_orders as l
left join listing_skus as s on l.shop = s.shop and l.listing_id = s.listing_id
where l.is_paid;

create or replace temp table out_kpi_refunds_daily as
with cohort_orders as (
    select * from paid_orders where paid_date = getvariable('day')
),
order_dims as (
    unpivot (select *, 'all' as overall from cohort_orders)
    on overall, shop, sku_code, category_code, supplier_code, channel
    into name breakdown value breakdown_value
),
cohort as (
    select breakdown, breakdown_value, count(*) as paid_orders,
        cast(sum(amount_fen) as bigint) as gmv_fen,
        count(*) filter (where has_refund) as refunded_orders,
        cast(sum(refunded_fen) as bigint) as refund_of_paid_fen
    from order_dims group by all
),
-- A refund counts in its order's breakdown rows with the coalesced values (`unmapped`, `none`,
-- `unknown`), as the model's `succeeded` takes them from its paid orders.
succeeded as (
    select r.refund_no, r.order_no, r.amount_fen, r.reason_code, bdate(r.succeeded_at) as succeeded_date,
        p.paid_date, p.shop as order_shop, p.sku_code, p.category_code, p.supplier_code,
        p.channel
    from refunds as r
    inner join paid_orders as p on r.order_no = p.order_no
    where r.refund_status = 'succeeded'
),
refund_dims as (
    unpivot (
        select refund_no, order_no, paid_date, succeeded_date, amount_fen, 'all' as overall,
            order_shop as shop, sku_code, category_code, supplier_code, channel,
            reason_code as reason
        from succeeded
    )
    on overall, shop, sku_code, category_code, supplier_code, channel, reason
    into name breakdown value breakdown_value
),
by_reason as (
    select breakdown, breakdown_value, count(distinct order_no) as refunded_orders,
        cast(sum(amount_fen) as bigint) as refund_of_paid_fen
    from refund_dims
    where breakdown = 'reason' and paid_date = getvariable('day') group by all
),
refunds_on as (
    select breakdown, breakdown_value, count(*) as refunds_on,
        cast(sum(amount_fen) as bigint) as refunds_fen_on
    from refund_dims where succeeded_date = getvariable('day') group by all
),
overall as (select * from cohort where breakdown = 'overall'),
keys as (
    select breakdown, breakdown_value from cohort
    union select breakdown, breakdown_value from by_reason
    union select breakdown, breakdown_value from refunds_on
    union select 'overall', 'all'  -- every day has its overall row
),
combined as (
    select replace(keys.breakdown, '_code', '') as breakdown, keys.breakdown_value,
        case when keys.breakdown = 'reason' then overall.paid_orders else cohort.paid_orders end
            as paid_orders,
        case when keys.breakdown = 'reason' then overall.gmv_fen else cohort.gmv_fen end
            as gmv_fen,
        coalesce(by_reason.refunded_orders, cohort.refunded_orders, 0) as refunded_orders,
        coalesce(by_reason.refund_of_paid_fen, cohort.refund_of_paid_fen, 0) as refund_of_paid_fen,
        coalesce(refunds_on.refunds_on, 0) as refunds_on,
        coalesce(refunds_on.refunds_fen_on, 0) as refunds_fen_on
    from keys
    left join cohort
        on keys.breakdown = cohort.breakdown and keys.breakdown_value = cohort.breakdown_value
    left join by_reason
        on keys.breakdown = by_reason.breakdown and keys.breakdown_value = by_reason.breakdown_value
    left join refunds_on
        on keys.breakdown = refunds_on.breakdown
        and keys.breakdown_value = refunds_on.breakdown_value
    left join overall on true
)
select getvariable('day') as business_date, breakdown, breakdown_value,
    coalesce(paid_orders, 0) as paid_orders, cast(coalesce(gmv_fen, 0) as bigint) as gmv_fen,
    refunded_orders, refund_of_paid_fen,
    refunded_orders / nullif(coalesce(paid_orders, 0), 0) as refund_rate,
    refund_of_paid_fen / nullif(cast(coalesce(gmv_fen, 0) as bigint), 0) as refund_amount_rate,
    refunds_on, refunds_fen_on
from combined;

-- @step kpi_inventory_daily
-- Stock at the end of the day = the closing stock published for the day before, minus what the
-- published ledger counted for the keys read, plus those keys' movements recomputed from their rows
-- now (the "delta"). The 30-day figures over the reported days W of [d-29, d] the same way: the
-- published days' COGS and day-end stock values, plus the delta, where a movement on day m changes
-- the day-end stock of every day of W from m on (so its value counts #{t in W: t >= m} times).
create or replace temp table movements_read as
with movements as (
    select *, 'received' as movement, imported_at as moved_at, 1 as units from keys_costed
    union all
    select *, 'delivered', sold_at, -1 from keys_costed where sold_at is not null
    union all
    select *, 'voided', voided_at, -1 from keys_costed where voided_at is not null
)
select key_id, movement, bdate(moved_at) as business_date, shop, sku_code, units,
    units * cost_fen as value_fen
from movements;

create or replace temp table inventory_days as
select distinct business_date as day
from read_parquet(getvariable('lake_inventory_files'), hive_partitioning = true)
where business_date between getvariable('day') - 29 and getvariable('day') - 1
union
select getvariable('day');

create or replace temp table out_kpi_inventory_daily as
with published as (
    select scope, shop, sku_code, sum(cogs_fen) as cogs_sum, sum(stock_value_fen) as value_sum,
        any_value(stock_units) filter (where business_date = getvariable('day') - 1) as prev_units,
        any_value(stock_value_fen) filter (where business_date = getvariable('day') - 1)
            as prev_value
    from read_parquet(getvariable('lake_inventory_files'), hive_partitioning = true)
    where business_date between getvariable('day') - 29 and getvariable('day') - 1
    group by all
),
delta as (
    select business_date, shop, sku_code, movement, units, value_fen from movements_read
    where business_date <= getvariable('day')
    union all
    select business_date, shop, sku_code, movement, -units, -value_fen from ledger_read
),
weights as (
    -- per movement day: the days of W whose day-end it changes, and whether it is one of them
    select dates.business_date, count(w.day) as n_after,
        bool_or(w.day = dates.business_date) as in_window
    from (select distinct business_date from delta) as dates
    left join inventory_days as w on w.day >= dates.business_date
    group by dates.business_date
),
scoped as (
    select 'overall' as scope, 'all' as shop, 'all' as sku_code, d.* exclude (shop, sku_code),
        w.n_after, w.in_window
    from delta as d inner join weights as w using (business_date)
    union all
    select 'shop', d.shop, 'all', d.* exclude (shop, sku_code), w.n_after, w.in_window
    from delta as d inner join weights as w using (business_date)
    union all
    select 'sku', d.shop, coalesce(d.sku_code, 'unmapped'), d.* exclude (shop, sku_code),
        w.n_after, w.in_window
    from delta as d inner join weights as w using (business_date)
),
changed as (
    select scope, shop, sku_code, sum(units) as units, sum(value_fen) as value_fen,
        sum(value_fen * n_after) as value_weighted,
        -sum(value_fen) filter (where movement = 'delivered' and in_window) as cogs_window,
        sum(units) filter (where business_date = getvariable('day') and movement = 'received')
            as received_units,
        -sum(units) filter (where business_date = getvariable('day') and movement = 'delivered')
            as delivered_units,
        -sum(units) filter (where business_date = getvariable('day') and movement = 'voided')
            as voided_units,
        -sum(value_fen) filter (where business_date = getvariable('day') and movement = 'delivered')
            as cogs_today
    from scoped group by all
),
series as (
    select coalesce(p.scope, c.scope) as scope, coalesce(p.shop, c.shop) as shop,
        coalesce(p.sku_code, c.sku_code) as sku_code,
        coalesce(p.prev_units, 0) + coalesce(c.units, 0) as stock_units,
        coalesce(p.prev_value, 0) + coalesce(c.value_fen, 0) as stock_value_fen,
        coalesce(c.received_units, 0) as received_units,
        coalesce(c.delivered_units, 0) as delivered_units,
        coalesce(c.voided_units, 0) as voided_units,
        coalesce(c.cogs_today, 0) as cogs_fen,
        coalesce(p.cogs_sum, 0) + coalesce(c.cogs_window, 0) as cogs_30d_fen,
        cast(coalesce(p.value_sum, 0) + coalesce(p.prev_value, 0) + coalesce(c.value_weighted, 0)
            as double) / (select count(*) from inventory_days) as avg_stock_value_30d_fen
    from published as p
    full outer join changed as c
        on p.scope = c.scope and p.shop = c.shop and p.sku_code = c.sku_code
),
paid_today as (
    select shop, is_stockout from orders_f where is_paid and paid_date = getvariable('day')
    union all
    select 'all', is_stockout from orders_f where is_paid and paid_date = getvariable('day')
),
stockouts as (
    select shop, count(*) filter (where is_stockout) as stockout_orders from paid_today group by shop
)
select getvariable('day') as business_date, r.scope, r.shop, r.sku_code,
    cast(r.stock_units as bigint) as stock_units, cast(r.stock_value_fen as bigint) as stock_value_fen,
    cast(r.received_units as bigint) as received_units,
    cast(r.delivered_units as bigint) as delivered_units,
    cast(r.voided_units as bigint) as voided_units, cast(r.cogs_fen as bigint) as cogs_fen,
    cast(r.cogs_30d_fen as bigint) as cogs_30d_fen, r.avg_stock_value_30d_fen,
    r.cogs_30d_fen / nullif(r.avg_stock_value_30d_fen, 0) as inventory_turnover_30d,
    case when r.cogs_30d_fen > 0 then r.stock_value_fen / (r.cogs_30d_fen / 30) end
        as days_of_cover,
    case when r.scope <> 'sku' then coalesce(so.stockout_orders, 0) end as stockout_orders
from series as r
left join stockouts as so on r.scope <> 'sku' and r.shop = so.shop;
