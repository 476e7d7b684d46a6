{#- The business day (docs/metrics.md#business-day): the calendar date in Asia/Shanghai of a UTC
    timestamp. -#}
{% macro business_date(ts) -%}
    cast(timezone('{{ var("business_tz") }}', {{ ts }}) as date)
{%- endmacro %}
