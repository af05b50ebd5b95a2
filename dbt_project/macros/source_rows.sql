{#- Every row of a landed source table, with every declared column typed as declared.

    PostgreSQL: the loader (warehouse/load_postgres.py) always creates the raw tables, so this is
    the source itself. DuckDB: the source is read_parquet over the lake; a table with no
    partition file yet (a company without a call center, say) would make read_parquet fail, so
    then this is an empty relation typed from the columns declared in _sources.yml. When files
    exist they are unioned by name with that typed empty relation, so a column no file carries
    still exists, with its declared type. -#}
{% macro source_rows(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {{ return(adapter.dispatch('source_rows')(relation, source_name, table_name)) }}
{%- endmacro %}

{% macro default__source_rows(relation, source_name, table_name) -%}
    select * from {{ relation }}
{%- endmacro %}

{% macro duckdb__source_rows(relation, source_name, table_name) -%}
    {#- In a unit test the source is a fixture CTE, not read_parquet: nothing to look for. -#}
    {%- set is_lake = 'read_parquet' in (relation | string) -%}
    {%- set node = cx_source_node(source_name, table_name) if execute and is_lake else none -%}
    {%- set lake_glob = node.meta.get('lake_glob') if node else none -%}
    {%- set has_files = true -%}
    {%- if lake_glob -%}
        {%- set found = run_query("select count(*) from glob('" ~ lake_glob ~ "')") -%}
        {%- set has_files = found.columns[0].values()[0] > 0 -%}
    {%- endif -%}
    {%- if has_files %}
    select * from {{ relation }}
    {%- endif %}
    {%- if node and node.columns %}
    {{ "union all by name" if has_files }}
    select
        {%- for column in node.columns.values() %}
        cast(null as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}
    where false
    {%- endif %}
{%- endmacro %}

{% macro cx_source_node(source_name, table_name) -%}
    {%- for node in (graph.get('sources') or {}).values() -%}
        {%- if node.source_name == source_name and node.name == table_name -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- The source node a generic test's `model` is (found by schema and identifier), or none. -#}
{% macro cx_source_node_of(model) -%}
    {%- if execute -%}
        {%- for node in (graph.get('sources') or {}).values() -%}
            {%- if node.schema == model.schema and node.identifier == model.identifier -%}
                {{ return(node) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}
