{#- Post-hook of an incremental Python model: drop the table its incremental build wrote the new
    rows to. dbt-duckdb 1.11 writes a Python model's rows to `<model>__dbt_tmp<time>` with
    `create table` although it counts it as a temporary table, so it never drops it and every
    run would leave one behind in the default schema. -#}
{% macro drop_python_model_temps() -%}
    {%- if execute and is_incremental() -%}
        {%- set found = run_query(
            "select schema_name, table_name from duckdb_tables() where database_name = '"
            ~ this.database ~ "' and table_name like '" ~ this.identifier ~ "\\_\\_dbt\\_tmp%' escape '\\'"
        ) -%}
        {%- for row in found.rows %}
    drop table if exists "{{ row[0] }}"."{{ row[1] }}";
        {%- endfor %}
    {%- endif %}
    select 1
{%- endmacro %}
