-- Every product name coded to a `sku_code` by the product coding standard (PRODUCT_CODING.md):
-- an explicit name alias if the alias seed has one; otherwise the name's brand (brand register and
-- its aliases, or a long-tail game title ending in an in-game currency word), its period (月卡, 季卡,
-- 年卡 and synonyms) or face value, and its category's variant. A name that cannot be coded keeps a
-- null `sku_code` and says why in `unmapped_reason`.
with

names as not materialized (
    select * from {{ ref('int_product_names') }}
),

categories as (
    select * from {{ ref('product_categories') }}
),

brands as not materialized (
    select * from {{ ref('product_brands') }}
),

aliases as not materialized (
    select * from {{ ref('product_aliases') }}
),

periods as (
    select * from {{ ref('product_periods') }}
),

brand_keys as (
    -- every registered brand under its own name and each of its aliases
    select
        {{ normalise_code_text('brand_name') }} as brand_key,
        brand_code
    from brands
    union
    select
        {{ normalise_code_text('alias_text') }} as brand_key,
        code as brand_code
    from aliases
    where alias_kind = 'brand'
),

period_labels as (
    select
        {{ normalise_code_text('alias_text') }} as period_label,
        code as variant
    from aliases
    where alias_kind = 'period'
),

game_units as (
    select
        {{ normalise_code_text('alias_text') }} as unit,
        code as category_code
    from aliases
    where alias_kind = 'game_unit'
),

name_aliases as (
    select
        {{ normalise_product_name('alias_text') }} as normalised_name,
        code as sku_code
    from aliases
    where alias_kind = 'name'
),

-- the longest period label the name ends with, if any
period_matches as (
    select
        names.system,
        names.product_ref,
        names.source_name,
        period_labels.variant,
        period_labels.period_label
    from names
    inner join period_labels on ends_with(names.name_before_face, period_labels.period_label)
    qualify row_number() over (
        partition by names.system, names.product_ref, names.source_name
        order by length(period_labels.period_label) desc, period_labels.period_label
    ) = 1
),

parsed as (
    select
        names.*,
        period_matches.variant as period_variant,
        {{ normalise_code_text(
            "case when period_matches.period_label is null then names.name_before_face
            else left(names.name_before_face,
                length(names.name_before_face) - length(period_matches.period_label)) end"
        ) }} as brand_key
    from names
    left join period_matches
        on
            names.system = period_matches.system
            and names.product_ref = period_matches.product_ref
            and names.source_name = period_matches.source_name
),

-- long tail: a title not in the register whose name ends in an in-game currency word is a game
-- brand of its own (`诛神说湖金币`); 手游 (mobile game) is not part of the title
long_tail_keys as (
    select
        parsed.system,
        parsed.product_ref,
        parsed.source_name,
        {{ long_tail_brand_text('parsed.brand_key') }} as long_tail_key
    from parsed
    anti join brand_keys on parsed.brand_key = brand_keys.brand_key
),

long_tail_named as (
    select
        long_tail_keys.*,
        game_units.category_code,
        left(
            long_tail_keys.long_tail_key,
            length(long_tail_keys.long_tail_key) - length(game_units.unit)
        ) as title
    from long_tail_keys
    inner join game_units
        on
            ends_with(long_tail_keys.long_tail_key, game_units.unit)
            and length(long_tail_keys.long_tail_key) > length(game_units.unit)
    qualify row_number() over (
        partition by long_tail_keys.system, long_tail_keys.product_ref, long_tail_keys.source_name
        order by length(game_units.unit) desc
    ) = 1
),

long_tail_brands as (
    select
        long_tail_key as brand_name,
        title,
        min(category_code) as category_code
    from long_tail_named
    group by long_tail_key, title
),

-- a title written without its currency word (`【诛神说湖】30元`) is the one brand with that title
long_tail_titles as (
    select
        title,
        min(brand_name) as brand_name,
        min(category_code) as category_code,
        count(*) as brand_count
    from long_tail_brands
    group by title
),

long_tail_resolved as (
    select
        long_tail_keys.system,
        long_tail_keys.product_ref,
        long_tail_keys.source_name,
        coalesce(long_tail_named.long_tail_key, long_tail_titles.brand_name) as brand_name,
        coalesce(long_tail_named.category_code, long_tail_titles.category_code) as category_code,
        case
            when long_tail_named.long_tail_key is not null then 1
            else long_tail_titles.brand_count
        end as brand_count
    from long_tail_keys
    left join long_tail_named
        on
            long_tail_keys.system = long_tail_named.system
            and long_tail_keys.product_ref = long_tail_named.product_ref
            and long_tail_keys.source_name = long_tail_named.source_name
    left join long_tail_titles on long_tail_keys.long_tail_key = long_tail_titles.title
),

branded as (
    select
        parsed.*,
        case
            when brand_keys.brand_code is not null then 'brand_register'
            when long_tail_resolved.brand_count = 1 then 'long_tail_title'
        end as brand_method,
        coalesce(
            brand_keys.brand_code,
            case
                when long_tail_resolved.brand_count = 1
                    then {{ derived_brand_code(
                        'long_tail_resolved.category_code', 'long_tail_resolved.brand_name'
                    ) }}
            end
        ) as brand_code,
        case
            when brand_keys.brand_code is not null then brands.brand_name
            when long_tail_resolved.brand_count = 1 then long_tail_resolved.brand_name
        end as brand_name,
        case
            when brand_keys.brand_code is not null then brands.category_code
            when long_tail_resolved.brand_count = 1 then long_tail_resolved.category_code
        end as category_code,
        coalesce(long_tail_resolved.brand_count, 0) > 1 as is_ambiguous_brand
    from parsed
    left join brand_keys on parsed.brand_key = brand_keys.brand_key
    left join brands on brand_keys.brand_code = brands.brand_code
    left join long_tail_resolved
        on
            parsed.system = long_tail_resolved.system
            and parsed.product_ref = long_tail_resolved.product_ref
            and parsed.source_name = long_tail_resolved.source_name
),

ruled as (
    select
        branded.*,
        categories.is_period_based,
        case
            when categories.is_period_based then branded.period_variant
            when branded.period_variant is null then categories.default_variant
        end as variant,
        case
            when categories.is_period_based then periods.face_value_yuan
            when branded.name_face_yuan is not null then branded.name_face_yuan
            -- no number in the name: the face value the source states (main-shop 原价, supplier 面值)
            when branded.stated_face_value_fen % 100 = 0 then branded.stated_face_value_fen // 100
        end as face_value_yuan,
        case
            when categories.is_period_based then 'period'
            when branded.name_face_yuan is not null then 'name'
            when branded.stated_face_value_fen % 100 = 0 then 'stated_face_value'
        end as face_source
    from branded
    left join categories on branded.category_code = categories.category_code
    left join periods
        on
            branded.category_code = periods.category_code
            and branded.period_variant = periods.variant
),

coded as (
    select
        ruled.*,
        name_aliases.sku_code as alias_sku_code,
        case
            when ruled.brand_code is null or ruled.variant is null or ruled.face_value_yuan is null
                then null
            else {{ sku_code(
                'ruled.category_code', 'ruled.brand_code', 'ruled.face_value_yuan', 'ruled.variant'
            ) }}
        end as rule_sku_code
    from ruled
    left join name_aliases on ruled.normalised_name = name_aliases.normalised_name
),

final as (
    select
        system,
        product_ref,
        listing_id,
        supplier_code,
        supplier_sku,
        source_name,
        source_category_name,
        normalised_name,
        brand_key,
        coalesce(alias_sku_code, rule_sku_code) as sku_code,
        case
            when alias_sku_code is not null then 'name_alias'
            when rule_sku_code is not null then brand_method
        end as match_method,
        case when alias_sku_code is null and rule_sku_code is not null then face_source end
            as face_source,
        case
            when alias_sku_code is not null then split_part(alias_sku_code, '-', 1)
            else category_code
        end as category_code,
        case
            when alias_sku_code is not null then split_part(alias_sku_code, '-', 2)
            else brand_code
        end as brand_code,
        case when alias_sku_code is null then brand_name end as brand_name,
        case
            when alias_sku_code is not null then cast(split_part(alias_sku_code, '-', 3) as integer)
            else face_value_yuan
        end as face_value_yuan,
        case
            when alias_sku_code is not null then split_part(alias_sku_code, '-', 4)
            else variant
        end as variant,
        case
            when alias_sku_code is not null or rule_sku_code is not null then null
            when coalesce(normalised_name, '') = '' then 'empty_name'
            when is_ambiguous_brand then 'ambiguous_brand'
            when brand_code is null then 'unknown_brand'
            when is_period_based and period_variant is null then 'no_period'
            when not is_period_based and period_variant is not null then 'unexpected_period'
            when face_value_yuan is null then 'no_face_value'
            else 'unparsed'
        end as unmapped_reason,
        stated_face_value_fen,
        list_price_fen,
        retail_price_fen,
        is_manual,
        first_seen_at,
        first_seen_date,
        last_seen_date,
        line_count
    from coded
)

select * from final
