{#- The product coding standard (dbt_project/PRODUCT_CODING.md).

    sku_code = <category_code>-<brand_code>-<face value in whole yuan, at least 4 digits>-<variant>,
    e.g. GAME-QQB-0100-STD, TOPUP-CMCC-0050-DIRECT, VIDEO-IQIYI-0068-M3.

    These macros are the name rules; the code lists (categories, brands, aliases, periods) are seeds. -#}

{#- Full-width forms (U+FF01..U+FF5E) and the ideographic space as their ASCII equivalents. -#}
{% macro half_width(text) -%}
    translate(
        {{ text }},
        '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　',
        '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~ '
    )
{%- endmacro %}

{#- A product name as the rule reads it: half-width, upper case, 元 spelled one way (RMB, 块 → 元),
    listing decorations dropped (【自动发货】, 【人工直充】, a trailing 卡密), then every space,
    bracket and separator removed. `Q币 100` → `Q币100`, `【自动发货】腾讯QQ币100元` → `腾讯QQ币100元`,
    `ＷＯＷ点卡　１５` → `WOW点卡15`, `蜀神座湖RMB宝128RMB` → `蜀神座湖元宝128元`. -#}
{% macro normalise_product_name(name) -%}
    regexp_replace(
        regexp_replace(
            regexp_replace(
                replace(replace(upper({{ half_width(name) }}), 'RMB', '元'), '块', '元'),
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
    )
{%- endmacro %}

{#- A code-list text (category, brand or alias name) as it is compared: half-width, upper case, only
    letters and digits (emoji, spaces and punctuation dropped). `🎮游戏点卡` → `游戏点卡`,
    `芒果TV VIP` → `芒果TVVIP`. -#}
{% macro normalise_code_text(text) -%}
    regexp_replace(upper({{ half_width(text) }}), '[^\p{L}\p{N}]', '', 'g')
{%- endmacro %}

{#- A normalised name without a trailing 直充 (a top-up marker, not part of brand or face value). -#}
{% macro strip_direct_marker(normalised_name) -%}
    regexp_replace({{ normalised_name }}, '(直充)+$', '')
{%- endmacro %}

{#- The face value in whole yuan written at the end of a normalised name (`Q币100元` → 100,
    `WOW点卡15` → 15), or null. -#}
{% macro name_face_yuan(normalised_name) -%}
    try_cast(regexp_extract({{ strip_direct_marker(normalised_name) }}, '(\d+)元?$', 1) as integer)
{%- endmacro %}

{#- What precedes the face value (`Q币100元` → `Q币`); the whole name when it ends in no number. -#}
{% macro name_before_face(normalised_name) -%}
    regexp_replace({{ strip_direct_marker(normalised_name) }}, '\d+元?$', '')
{%- endmacro %}

{#- A long-tail title's brand text as the rule reads it: without the word 手游 (mobile game). -#}
{% macro long_tail_brand_text(brand_text) -%}
    replace({{ brand_text }}, '手游', '')
{%- endmacro %}

{#- The brand code of a brand that is not in the brand register (the long tail of game titles):
    the category's initial and the first 8 hex digits of the MD5 of the brand's canonical name
    (UTF-8), upper case: 诛神说湖金币 in GAME → G8F3FE572. Stable, needs no register row. -#}
{% macro derived_brand_code(category_code, brand_name) -%}
    upper(left({{ category_code }}, 1)) || upper(left(md5({{ brand_name }}), 8))
{%- endmacro %}

{#- The SKU code from its four parts; the face value has at least four digits (0100, 1000, 12000). -#}
{% macro sku_code(category_code, brand_code, face_yuan, variant) -%}
    {{ category_code }} || '-' || {{ brand_code }} || '-'
    || printf('%04d', {{ face_yuan }}) || '-' || {{ variant }}
{%- endmacro %}
