{#- The change set: what each incremental model rebuilt, so that the models reading it rebuild
    only what that touches (docs/incremental.md).

    Schema `changes` of the build file holds, per incremental model, a change log
    `changes."<model>"`: its key columns and `run_at` (the dbt invocation's start), one row per key
    the model rebuilt or removed in that run; and `changes._runs`: one row per build of each
    model (`full` when it was rebuilt from everything, in which case it logs no keys: everything
    changed). A model's last build is its latest `_runs` row; what an upstream model changed since
    then is its log after that time, so a run that failed or left a model out is caught up by the
    next one. Logs are pruned once every model, and the publisher, have read them (the publisher
    keeps its place as model `_publish` in `changes._runs`).

    A mart's log rows also carry `_content`, the sum of the hashes of every column of the rows
    they stand for, and `changes._keys` names each model's key: the publisher patches the serving
    file and the Parquet days by them (`pipelines.lib.publish_plan`).

    Nothing here is data: the equality of an incremental and a full build is over the other
    schemas. -#}

{#- Run once at the start of every dbt invocation (`on-run-start`). -#}
{% macro create_change_schema() -%}
    create schema if not exists changes;
    create table if not exists changes._runs (
        model varchar not null, run_at timestamptz not null, "full" boolean not null
    );
    create table if not exists changes._keys (model varchar primary key, key_columns varchar[]);
{%- endmacro %}

{#- `_content` of a log row: for a mart, the sum of the hashes of every column of the rows it
    stands for (all its rows with those logged values), before or after a run. A rebuilt row with
    the same content cancels out in `changed_values`, so the publisher rewrites only what differs;
    other models log null. -#}
{% macro log_content() -%}
    {%- if this.schema == 'marts' -%}
        cast(sum(hash(*columns(* exclude (_built_at)))) as hugeint)
    {%- else -%}
        cast(null as hugeint)
    {%- endif -%}
{%- endmacro %}

{#- This model's key columns, as its `unique_key` config names them. -#}
{% macro key_columns_literal() -%}
    {%- set key = config.get('unique_key') -%}
    {%- set columns = [key] if key is string else key -%}
    [{% for c in columns %}'{{ c }}'{{ ", " if not loop.last }}{% endfor %}]
{%- endmacro %}

{#- The start of this dbt invocation, as the `_built_at` every row rebuilt by it carries. -#}
{% macro this_run() -%}
    cast('{{ run_started_at }}' as timestamptz)
{%- endmacro %}

{#- When this model was last built (null: never with a change log). -#}
{% macro last_build() -%}
    (select max(run_at) from changes._runs where model = '{{ this.identifier }}')
{%- endmacro %}

{#- True when this build must reconsider every key: not an incremental build, this model never
    logged a build, or one of `upstreams` (model names) was rebuilt in full since this model's last
    build. Otherwise a model rebuilds the keys `changed_since` gives. -#}
{% macro rebuild_all(upstreams) -%}
    {%- if not is_incremental() -%}
        true
    {%- else -%}
        ({{ last_build() }} is null or exists (
            select 1 from changes._runs
            where
                "full" and run_at > {{ last_build() }}
                and model in ({% for m in upstreams %}'{{ m }}'{{ ", " if not loop.last }}{% endfor %})
        ))
    {%- endif -%}
{%- endmacro %}

{#- The keys an upstream incremental model rebuilt or removed since this model's last build
    (`columns`: a select list over its key columns). Only valid under `not rebuild_all(...)`. -#}
{% macro changed_since(upstream, columns) -%}
    select {{ columns }} from changes."{{ upstream }}"
    where run_at > coalesce({{ last_build() }}, '-infinity'::timestamptz)
{%- endmacro %}

{#- Of the rows an upstream model rebuilt or removed since this model's last build, those whose
    `columns` (a select list over its logged columns, the key among them) differ between before
    and after. Each run logs a rebuilt key's row once as it was and once as it is, so over any
    number of runs a value a key passed through is logged an even number of times, and only its
    first value and its last one (when they differ) an odd number: a key rebuilt with the same
    values cancels out. Only valid under `not rebuild_all(...)`. -#}
{% macro changed_values(upstream, columns) -%}
    select {{ columns }} from ({{ changed_since(upstream, columns) }})
    group by all
    having count(*) % 2 = 1
{%- endmacro %}

{#- This model's change log, created (empty) on its first use: `columns` of the model, and
    `run_at`. -#}
{% macro create_change_log(columns) -%}
    create table if not exists changes."{{ this.identifier }}" as
    select {{ columns | join(', ') }}, {{ log_content() }} as _content, {{ this_run() }} as run_at
    from {{ this }} group by all limit 0
{%- endmacro %}

{#- Pre-hook of an incremental model: log the rows the build may replace or remove, as they are
    before it (`candidates`: a SQL condition over this model's rows, the change set as the model
    computes it), so that readers keyed by another column (the order a statement line pays, say)
    learn the value a row had as well as the one it gets. -#}
{% macro log_before(columns, candidates) -%}
    {%- if is_incremental() -%}
        {{ create_change_log(columns) }};
        insert into changes."{{ this.identifier }}"
        select {{ columns | join(', ') }}, {{ log_content() }}, {{ this_run() }} from {{ this }}
        where {{ candidates }}
        group by all
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of an incremental model: log the rows it rebuilt (`_built_at` of this run), remove
    the `stale` ones (a SQL condition: rows of the change set its inputs no longer give; they
    were logged by `log_before`), and record the build. A full build logs no rows, only `full`,
    and starts the log afresh. -#}
{% macro record_build(columns, stale) -%}
    {%- set log = 'changes."' ~ this.identifier ~ '"' -%}
    {%- if is_incremental() %}
    {{ create_change_log(columns) }};
    insert into {{ log }}
    select {{ columns | join(', ') }}, {{ log_content() }}, {{ this_run() }} from {{ this }}
    where _built_at = {{ this_run() }}
    group by all;
    delete from {{ this }} where {{ stale }};
    {%- else %}
    {#- made afresh: a new version of the model may log other columns #}
    drop table if exists {{ log }};
    {{ create_change_log(columns) }};
    {%- endif %}
    insert into changes._runs values ('{{ this.identifier }}', {{ this_run() }}, {{ not is_incremental() }});
    insert or replace into changes._keys values ('{{ this.identifier }}', {{ key_columns_literal() }});
    -- every model has been built since, and the publisher has read them: no reader needs these
    -- entries any more (those of the latest such run stay, to show what it changed)
    delete from {{ log }}
    where run_at < (
        select min(last_run) from (select max(run_at) as last_run from changes._runs group by model)
    )
{%- endmacro %}

{#- Where a model keyed by a change set keeps it while it builds: computed once, by the pre-hook,
    then read by the body (as `changed`) and the post-hook, so the three agree and the inputs'
    logs and comparisons are read once. Dropped after the build. -#}
{% macro change_set() -%}
    changes."{{ this.identifier }}__change_set"
{%- endmacro %}

{#- Pre-hook of a model keyed by a change set: compute the change set (`changes`: a query of the
    key columns and any others the body filters by; a body filtering by a column that may be null
    must leave the nulls out of its `in` list, as int_identifiers_observed does) and log the rows
    of it as they are before the build (`log_columns`). -#}
{% macro before_build(key_columns, log_columns, changes, upstreams) -%}
    {%- if is_incremental() -%}
        {# a null key names no row; kept, it would also make every `in` over the set a search
           through one hash bucket of nulls (a 1 s filter took 70 s) #}
        create or replace table {{ change_set() }} as
        select * from ({{ changes }})
        where {% for c in key_columns %}{{ c }} is not null{{ " and " if not loop.last }}{% endfor %};
        {{ log_before(log_columns, in_change_set(key_columns,
            'select ' ~ key_columns | join(', ') ~ ' from ' ~ change_set(), upstreams)) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of a model keyed by a change set: `record_build`, the stale rows being those of the
    change set the build did not write again. -#}
{% macro after_build(key_columns, log_columns, upstreams) -%}
    {{ record_build(log_columns, not_rebuilt(key_columns,
        'select ' ~ key_columns | join(', ') ~ ' from ' ~ change_set(), upstreams)) }};
    drop table if exists {{ change_set() }}
{%- endmacro %}

{#- A filter of this model's rows: those whose key is in the change set `keys` (a query of the
    key columns), or every row under `rebuild_all(upstreams)`. -#}
{% macro in_change_set(key_columns, keys, upstreams) -%}
    {%- if is_incremental() -%}
        ({{ rebuild_all(upstreams) }} or ({{ key_columns | join(', ') }}) in ({{ keys }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- `stale` for `record_build`: rows of the change set that this build did not write again (their
    keys left the inputs). -#}
{% macro not_rebuilt(key_columns, keys, upstreams) -%}
    _built_at <> {{ this_run() }} and {{ in_change_set(key_columns, keys, upstreams) }}
{%- endmacro %}
