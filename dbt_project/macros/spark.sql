{#- Spark's side of the macros that differ between engines (the others are dbt's cross-database
    macros). The warehouse on Spark: tables are Parquet in the catalog's warehouse folder. -#}

{#- on-run-start: every lake source (a source table with a lake_glob) becomes an external Parquet
    table over its lake folder, typed as _sources.yml declares, so Spark reads the lake in place.
    It is made again on every command, so a folder's new files are listed and a changed contract
    is applied; dropping an external table leaves its files. Spark leaves out files whose name
    starts with '.', as a writer's unfinished .tmp-*.parquet does, and reads a column no file
    carries yet as null, like the typed empty relation of duckdb__source_rows. Other engines:
    nothing (DuckDB reads the lake through external_location, PostgreSQL gets a raw copy). -#}
{% macro register_lake_sources() -%}
    {{ return(adapter.dispatch('register_lake_sources')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.meta.get('lake_glob') -%}
            {%- set folder = node.meta['lake_glob'].rsplit('/', 1)[0] -%}
            {%- do run_query('create schema if not exists ' ~ node.schema) -%}
            {%- do run_query('drop table if exists ' ~ node.schema ~ '.' ~ node.identifier) -%}
            {%- set ddl -%}
                create table {{ node.schema }}.{{ node.identifier }} (
                    {%- for column in node.columns.values() %}
                    {{ column.name }} {{ spark_type(column.data_type) }}{{ "," if not loop.last }}
                    {%- endfor %}
                )
                using parquet
                location '{{ folder }}'
            {%- endset -%}
            {%- do run_query(ddl) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- A column type as _sources.yml declares it (DuckDB and PostgreSQL words) in Spark's words. -#}
{% macro spark_type(data_type) -%}
    {%- set words = {
        'text': 'string', 'varchar': 'string', 'timestamptz': 'timestamp',
        'timestamp': 'timestamp_ntz', 'timestamp with time zone': 'timestamp',
        'double precision': 'double', 'integer': 'int',
    } -%}
    {{- words.get(data_type | lower, data_type | replace('numeric', 'decimal')) -}}
{%- endmacro %}

{#- dbt's cast, used by model contracts: the declared type in Spark's words. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}

{#- Spark's TIMESTAMP is an instant shown in the session's time zone; TIMESTAMP_NTZ is the wall
    clock, as the other engines' `timestamp`. -#}
{% macro spark__to_utc(column) -%}
    to_timestamp_ntz(from_utc_timestamp({{ column }}, 'UTC'))
{%- endmacro %}

{#- Keep the latest row per key: max_by over the whole row as a struct, in one aggregation. -#}
{% macro spark__dedupe(relation, partition_by, order_by) -%}
    select latest_rows.latest_row.*
    from (
        select
            max_by(
                struct(candidate_rows.*),
                struct(
                    {%- for expression in order_by %}
                    {{ expression }} as sort_key_{{ loop.index }}{{ "," if not loop.last }}
                    {%- endfor %}
                )
            ) as latest_row
        from {{ relation }} as candidate_rows
        group by candidate_rows.{{ partition_by }}
    ) as latest_rows
{%- endmacro %}

{#- Spark's own hashes skip a null argument, so (null, 1) and (1, null) would hash alike: the
    values go through JSON (nulls kept) or a separated text first. -#}
{% macro spark__row_hash(alias) -%}
    xxhash64(to_json(struct({{ alias }}.*), map('ignoreNullFields', 'false')))
{%- endmacro %}

{% macro spark__hash_values(expressions) -%}
    xxhash64(
        concat_ws('|'{%- for expression in expressions %}, coalesce(cast({{ expression }} as string), '~'){%- endfor %})
    )
{%- endmacro %}
