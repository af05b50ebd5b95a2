{#- What the largest tables' incremental runs rewrite, for the analysts' copy.

    The publish (warehouse/publish.py) brings the copy up to date by rows, comparing each
    table's rows by hash with the copy's. fct_member_daily and member_features_pit hold tens of
    millions of rows at a million members, and a day rewrites the rows of a few thousand
    members. Their pre-hooks log which members (member_id) and which cutoffs (cutoff_date) they
    delete and write again in cx_state.publish_log, left out of the copy, so the publish compares
    only those rows. A run that writes the whole table logs one row with neither.

    Logged in the pre-hook, in the model's transaction and before any row changes: a run that
    fails logs nothing, and a run logs as much as it rewrites or more, never less. The publish
    deletes the entries its copy has taken in. DuckDB only: on PostgreSQL analysts read the
    live schema. -#}

{% macro publish_log_relation(identifier='publish_log') -%}
    {{ return(api.Relation.create(
        database=this.database, schema='cx_state', identifier=identifier
    )) }}
{%- endmacro %}

{#- SQL logging the members `members_sql` selects (a member_id column) and the cutoffs
    `cutoffs_sql` selects (a cutoff_date column), or, with neither, the whole table. Each insert
    takes the next log_id after every one logged or taken in (publish_log_position, which the
    publish writes), so the entries after the copy's position are exactly those it lacks. -#}
{% macro publish_log(members_sql=none, cutoffs_sql=none) -%}
    {%- if target.type == 'duckdb' -%}
        {%- set log_table = publish_log_relation() -%}
        {%- set position = publish_log_relation('publish_log_position') -%}
        {%- set next_id -%}
            (select coalesce(max(log_id), 0) + 1 from (
                select log_id from {{ log_table }} union all select log_id from {{ position }}
            ) as ids)
        {%- endset -%}
        create schema if not exists {{ log_table.database }}.cx_state;
        create table if not exists {{ log_table }} (
            log_id bigint, table_name varchar, member_id varchar, cutoff_date date
        );
        create table if not exists {{ position }} (log_id bigint);
        {%- if members_sql is none and cutoffs_sql is none %}
        insert into {{ log_table }}
        select {{ next_id }}, '{{ this.identifier }}', null, null;
        {%- endif %}
        {%- if members_sql is not none %}
        insert into {{ log_table }}
        select distinct {{ next_id }}, '{{ this.identifier }}', member_id, null
        from ({{ members_sql }}) as logged
        where member_id is not null;
        {%- endif %}
        {%- if cutoffs_sql is not none %}
        insert into {{ log_table }}
        select distinct {{ next_id }}, '{{ this.identifier }}', null, cutoff_date
        from ({{ cutoffs_sql }}) as logged
        where cutoff_date is not null;
        {%- endif %}
    {%- endif -%}
{%- endmacro %}
