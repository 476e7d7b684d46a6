{#- The business days a run (re)builds: the cycle passes them in the environment variable
    `CARDLAKE_DAYS` (comma-separated ISO days), read only while the models execute. Read at parse
    time, or passed as a `--vars` value, a new set of days would make dbt re-parse the project on
    every run; read under `execute`, it leaves the parsed project as it was. An incremental model
    rebuilds only those days' rows; without the variable (a first build, a full refresh, a manual
    `dbt build`) it rebuilds everything. -#}

{% macro run_days() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set days = env_var('CARDLAKE_DAYS', '') | trim -%}
    {{ return(days.split(',') if days else []) }}
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

{#- The rows of a day-partitioned incremental model that a run of its days did not write again:
    gone from the sources (a re-sent file with fewer lines, say); `record_build` removes them. -#}
{% macro stale_run_days(column) -%}
    {{ in_run_days(column) }} and _built_at <> {{ this_run() }}
{%- endmacro %}

{#- Staging of a versioned source as an incremental table (the latest version of each row): the
    rows of the source to rank again in this run. They are every version of each key that has a
    version in the run's days, or whose current row came from one of those days (re-landing a day
    replaces its versions; a key left with no version at all is removed by the post-hook
    `record_build` as `stale_run_days('_landed_date')`). A key with no version in those days keeps
    its row, so a run ranks the versions of the changed keys once (still scanning the source for
    them: the history is read, not ranked) instead of ranking every version ever landed for every
    model and test that reads the staging model. Everything outside an incremental run. -#}
{% macro versions_to_rank(source_relation, source_key, model_key) -%}
    {{ in_run_version_keys(source_key, source_relation, source_key, model_key) }}
{%- endmacro %}

{#- The rows of a versioned staging table a run may replace: those of the same keys
    (`log_before`'s candidates). -#}
{% macro versions_candidates(source_relation, source_key, model_key) -%}
    {{ in_run_version_keys(model_key, source_relation, source_key, model_key) }}
{%- endmacro %}

{#- `column` is one of the keys that have a version in the run's days or whose current row came
    from one of them (everything outside an incremental run). -#}
{% macro in_run_version_keys(column, source_relation, source_key, model_key) -%}
    {%- if is_incremental() and run_days() -%}
        {{ column }} in (
            select {{ source_key }} from {{ source_relation }}
            where {{ in_run_days('business_date') }}
            union
            select {{ model_key }} from {{ this }}
            where {{ in_run_days('_landed_date') }}
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
