{#- The business days a run (re)builds: the daily partitions Dagster (or `cardlake run`) passes as
    the `cardlake_days` variable. An incremental model rebuilds only those days' rows; without the
    variable (a first build, a full refresh, a manual `dbt build`) it rebuilds everything. -#}

{% macro run_days() -%}
    {{ return(var('cardlake_days', []) or []) }}
{%- endmacro %}

{#- A filter keeping the run's days in an incremental build, and everything otherwise. -#}
{% macro in_run_days(column) -%}
    {%- if is_incremental() and run_days() -%}
        {{ column }} in (
            {%- for day in run_days() %}date '{{ day }}'{{ ", " if not loop.last }}{% endfor -%}
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of a day-partitioned incremental model: rows of the run's days that this build did
    not write again are gone from the sources (a re-sent file with fewer lines, say). -#}
{% macro delete_stale_run_days(column) -%}
    {%- if is_incremental() and run_days() -%}
        delete from {{ this }}
        where {{ in_run_days(column) }} and _built_at <> cast('{{ run_started_at }}' as timestamptz)
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
