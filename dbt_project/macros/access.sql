{#- Who may read and write what on PostgreSQL, applied by the project itself: `on-run-end` runs
    this after every dbt command (a whole build, or one model's task in the warehouse DAG), and
    `python -m privacy grants` runs it by hand. Three group roles (NOLOGIN; people and services
    log in as their own roles and are granted membership):

    - analyst (`cx_analyst`): reads the tables of the marts' schema in the var
      `analyst_tables`; nothing in staging, intermediate, `raw`, `restricted` or `snapshots`.
    - marketer (`cx_marketer`): reads the tables in the var `marketer_tables`.
    - pipeline (`cx_pipeline`): uses and writes every schema the project writes.

    Both lists come from the table registry (warehouse/tables.yml, `tables.grant_vars()`),
    which warehouse/dbt_runner.py passes as vars on every dbt command, so a table's readers are
    decided in one place. A dbt command run without them on PostgreSQL fails here, naming the
    cause: granting from a default list would revoke every reader's access and grant it back
    only to the tables that list happened to name.

    Every other relation in the marts' schema (staging views with emails and phones,
    intermediate tables) is revoked from analyst and marketer on every run, so a model that
    moves out of the marts loses its readers. Missing roles are created when the dbt user may
    create roles, else the run fails naming the role. On DuckDB (one local file, no roles)
    this does nothing. -#}
{% macro apply_access_grants() -%}
    {%- if target.type != 'postgres' or not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set roles = var('access_roles') -%}
    {%- set marts_schema = target.schema -%}
    {%- set written_schemas = [marts_schema, 'raw', 'restricted', 'snapshots'] -%}
    {%- do run_query("select pg_advisory_lock(hashtext('cx_apply_access_grants'))") -%}
    {%- do cx_ensure_roles(roles.values() | list) -%}

    {%- set existing = run_query(
        "select nspname from pg_namespace where nspname in ('"
        ~ (written_schemas | join("', '")) ~ "')"
    ).columns[0].values() | list -%}
    {%- set relations = run_query(
        "select table_name from information_schema.tables where table_schema = '"
        ~ marts_schema ~ "'"
    ).columns[0].values() | list -%}

    {%- if var('analyst_tables', none) is none or var('marketer_tables', none) is none -%}
        {{ exceptions.raise_compiler_error(
            "apply_access_grants needs the vars analyst_tables and marketer_tables, which "
            ~ "warehouse/dbt_runner.py passes from the table registry (warehouse/tables.yml): "
            ~ "run dbt through `python -m warehouse` or `make`, or pass them with --vars") }}
    {%- endif -%}
    {%- set analyst_tables = [] -%}
    {%- for name in var('analyst_tables') if name in relations -%}
        {%- do analyst_tables.append(name) -%}
    {%- endfor -%}
    {%- set marketer_tables = [] -%}
    {%- for name in var('marketer_tables') if name in relations -%}
        {%- do marketer_tables.append(name) -%}
    {%- endfor -%}

    {%- set readers = roles.analyst ~ ', ' ~ roles.marketer -%}
    {%- set statements = [] -%}
    {%- do statements.append('grant connect on database "' ~ target.dbname ~ '" to '
        ~ readers ~ ', ' ~ roles.pipeline) -%}
    {%- for schema in existing -%}
        {%- do statements.append('revoke all on schema "' ~ schema ~ '" from public') -%}
        {%- do statements.append('grant usage, create on schema "' ~ schema ~ '" to ' ~ roles.pipeline) -%}
        {%- do statements.append('grant select, insert, update, delete, truncate on all tables in schema "'
            ~ schema ~ '" to ' ~ roles.pipeline) -%}
        {%- do statements.append('alter default privileges in schema "' ~ schema
            ~ '" grant select, insert, update, delete, truncate on tables to ' ~ roles.pipeline) -%}
        {%- do statements.append('revoke all on all tables in schema "' ~ schema ~ '" from public, '
            ~ readers) -%}
        {%- if schema != marts_schema -%}
            {%- do statements.append('revoke all on schema "' ~ schema ~ '" from ' ~ readers) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if marts_schema in existing -%}
        {%- do statements.append('grant usage on schema "' ~ marts_schema ~ '" to ' ~ readers) -%}
        {%- for name in analyst_tables | unique -%}
            {%- do statements.append('grant select on "' ~ marts_schema ~ '"."' ~ name ~ '" to ' ~ roles.analyst) -%}
        {%- endfor -%}
        {%- for name in marketer_tables -%}
            {%- do statements.append('grant select on "' ~ marts_schema ~ '"."' ~ name ~ '" to ' ~ roles.marketer) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do run_query(statements | join(';\n')) -%}
    {%- do run_query("select pg_advisory_unlock(hashtext('cx_apply_access_grants'))") -%}
    {{ log("access grants applied: " ~ (analyst_tables | unique | list | length) ~ " tables to "
        ~ roles.analyst ~ ", " ~ (marketer_tables | length) ~ " to " ~ roles.marketer, info=true) }}
    {{ return('') }}
{%- endmacro %}

{% macro cx_ensure_roles(names) -%}
    {%- set found = run_query(
        "select rolname from pg_roles where rolname in ('" ~ (names | join("', '")) ~ "')"
    ).columns[0].values() | list -%}
    {%- set missing = names | reject('in', found) | list -%}
    {%- if missing -%}
        {%- set allowed = run_query(
            "select rolcreaterole or rolsuper from pg_roles where rolname = current_user"
        ).columns[0].values()[0] -%}
        {%- if not allowed -%}
            {{ exceptions.raise_compiler_error(
                "PostgreSQL role(s) " ~ (missing | join(', ')) ~ " do not exist and " ~ target.user
                ~ " may not create roles: have an administrator run `CREATE ROLE <name> NOLOGIN`"
                ~ " for each (see dbt_project/macros/access.sql), then rerun.") }}
        {%- endif -%}
        {%- for name in missing -%}
            {#- Two runs may race to create a role: the loser's duplicate is no error. -#}
            {%- do run_query("do $$ begin create role " ~ name ~ " nologin; "
                ~ "exception when duplicate_object then null; end $$") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
