{#- The order-number standard (dbt_project/ORDER_NUMBERS.md): one format for every order of every shop,
    `<shop letter>-<the shop's own number>`: `M-` + the main shop's 16-character `order_sn` (upper case),
    `S-` + the substation's 18/19-digit `trade_no`. -#}
{% macro order_no(shop, native_no) -%}
    case {{ shop }}
        when 'main' then 'M-' || upper(trim({{ native_no }}))
        when 'substation' then 'S-' || trim({{ native_no }})
    end
{%- endmacro %}

{#- Whether a number has the shape of a shop's own order number. -#}
{% macro is_native_order_no(shop, value) -%}
    case {{ shop }}
        when 'main' then regexp_full_match({{ value }}, '[A-Za-z0-9]{16}')
        when 'substation' then regexp_full_match({{ value }}, '[0-9]{18,19}')
        else false
    end
{%- endmacro %}

{#- A merchant order number with one integration affix removed (null when the affix is absent). -#}
{% macro strip_affix(value, affix, position) -%}
    case
        when {{ position }} = 'prefix' and starts_with({{ value }}, {{ affix }})
            then substr({{ value }}, length({{ affix }}) + 1)
        when {{ position }} = 'suffix' and ends_with({{ value }}, {{ affix }})
            then substr({{ value }}, 1, length({{ value }}) - length({{ affix }}))
    end
{%- endmacro %}
