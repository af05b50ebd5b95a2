{#- What the largest tables' incremental runs rewrite, for the analysts' copy.

    The publish (warehouse/publish.py) brings the copy up to date by rows, comparing each
    table's rows by hash with the copy's. fct_member_daily, member_features_pit and
    fct_transactions hold tens of millions of rows at a million members, and a day rewrites a
    few thousand members' rows of them. Their pre-hooks log the keys of what they delete and
    write again (members, cutoffs, transactions) in cx_state.publish_log, left out of the copy,
    so the publish compares only those rows. A run that writes the whole table logs one row
    with no key.

    Logged in a pre-hook, in the model's transaction and before any row changes: a run that
    fails logs nothing, and a run logs as much as it rewrites or more, never less. The publish
    deletes the entries its copy has taken in. DuckDB only: on PostgreSQL analysts read the
    live schema. -#}

{% macro publish_log_relation(identifier='publish_log') -%}
    {{ return(api.Relation.create(
        database=this.database, schema='cx_state', identifier=identifier
    )) }}
{%- endmacro %}

{#- SQL logging the values of `key_column` that `keys_sql` selects (as a column of that name),
    or, with no `keys_sql`, the whole table. Each insert takes the next log_id after every one
    logged or taken in (publish_log_position, which the publish writes), so the entries after
    the copy's position are exactly those it lacks. -#}
{% macro publish_log(keys_sql=none, key_column=none) -%}
    {%- if target.type == 'duckdb' -%}
        {%- set log_table = publish_log_relation() -%}
        {%- set position = publish_log_relation('publish_log_position') -%}
        create schema if not exists {{ log_table.database }}.cx_state;
        create table if not exists {{ log_table }} (
            log_id bigint, table_name varchar, key_column varchar, key_value varchar
        );
        create table if not exists {{ position }} (log_id bigint);
        insert into {{ log_table }}
        with next_id as (
            select coalesce(max(log_id), 0) + 1 as log_id from (
                select log_id from {{ log_table }} union all select log_id from {{ position }}
            ) as ids
        )
        {%- if keys_sql is none %}
        select log_id, '{{ this.identifier }}', null, null from next_id;
        {%- else %}
        select distinct next_id.log_id, '{{ this.identifier }}', '{{ key_column }}',
            cast(logged.{{ key_column }} as varchar)
        from ({{ keys_sql }}) as logged
        cross join next_id
        where logged.{{ key_column }} is not null;
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook after lake_files_list: the keys (trimmed `key_column`) of the lake files the model
    reads again, which are the keys of every row it can rewrite. The whole table when it reads
    every row (a full build, or off DuckDB's lake), or when every file is new (no ledger, or the
    model's definition changed): logging every key would copy the table's keys into the log
    for a publish that then compares every row anyway. -#}
{% macro lake_files_publish_log(source_name, table_name, key_column) -%}
    {%- if execute -%}
        {%- set keys = lake_files_changed_keys(
            source_name, table_name, 'trim(' ~ key_column ~ ')'
        ) -%}
        {%- set some_files = keys and run_query(
            "select (select count(*) from lake_files_new) < (select count(*) from lake_files_now)"
        ).columns[0].values()[0] -%}
        {%- if some_files %}
        {{ publish_log(
            'select changed_key as ' ~ key_column ~ ' from (' ~ keys ~ ') as changed', key_column
        ) }}
        {%- else %}
        {{ publish_log() }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
