{#- The business day (metrics.md): the calendar date in Asia/Shanghai of a UTC timestamp. -#}
{% macro business_date(ts) -%}
    cast(timezone('{{ var("business_tz") }}', {{ ts }}) as date)
{%- endmacro %}
