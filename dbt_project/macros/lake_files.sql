{#- Which lake partition files a model has already read, so an incremental run reads again only
    the keys of the files that are new or rewritten since.

    The ledger (cx_state.lake_files_read, left out of the analysts' copy) holds, per model, each
    file it read with the size and modification time the file had then, and the model's
    definition. A file counts as new when the ledger lacks it with the same size, time and
    definition: a new landing, a rerun or backfill that rewrote a partition, every file after
    the model's SQL or its staging view changed, and every file when the ledger is missing (a
    warehouse built before it). A change in a macro the model calls is not seen: run the model
    with --full-refresh then.

    The pre-hook (lake_files_list) takes one listing of the lake and the post-hook
    (lake_files_record) records that same listing, so a file landed while the model runs is not
    recorded unread: it is new again next run. On PostgreSQL the sources are tables, not files,
    and these macros do nothing; the model compares every row as before. -#}

{% macro lake_files_ledger() -%}
    {{ return(api.Relation.create(
        database=this.database, schema='cx_state', identifier='lake_files_read'
    )) }}
{%- endmacro %}

{#- The glob of a source table's lake files (its lake_glob), or none off DuckDB's lake. -#}
{% macro lake_files_glob(source_name, table_name) -%}
    {%- if target.type != 'duckdb' or not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = cx_source_node(source_name, table_name) -%}
    {{ return(node.meta.get('lake_glob') if node else none) }}
{%- endmacro %}

{#- The model's definition as the ledger records it: the hash of its own SQL and of the SQL
    its staging view was created with in this run (so a changed cast or clean-up rereads
    every file). -#}
{% macro lake_files_definition(staging_model) -%}
    {%- set staging = ref(staging_model) -%}
    {%- set result = run_query(
        "select sql from duckdb_views() where database_name = '" ~ staging.database
        ~ "' and schema_name = '" ~ staging.schema ~ "' and view_name = '" ~ staging.identifier ~ "'"
    ) -%}
    {%- set view_sql = result.columns[0].values()[0] if result.rows else '' -%}
    {{ return(local_md5(model.raw_code ~ '\n' ~ view_sql)) }}
{%- endmacro %}

{#- Pre-hook: temporary tables lake_files_now (the listing) and lake_files_new (the files of the
    listing the ledger lacks as they are now). Also on a full build, so the post-hook can
    record the listing. -#}
{% macro lake_files_list(source_name, table_name, staging_model) -%}
    {%- set lake_glob = lake_files_glob(source_name, table_name) -%}
    {%- if lake_glob -%}
        {%- set ledger = lake_files_ledger() -%}
        {%- set has_ledger = load_relation(ledger) is not none -%}
        {%- set definition = lake_files_definition(staging_model) -%}
        {%- do run_query("drop table if exists lake_files_now") -%}
        {%- do run_query("drop table if exists lake_files_new") -%}
        {%- do run_query(
            "create temporary table lake_files_now as "
            ~ "select filename as file, size, last_modified, '" ~ definition ~ "' as definition "
            ~ "from read_blob('" ~ lake_glob ~ "')"
        ) -%}
        {%- set query -%}
            create temporary table lake_files_new as
            select file from lake_files_now
            {%- if has_ledger %}
            where not exists (
                select 1
                from {{ ledger }} as ledger
                where
                    ledger.model = '{{ this.identifier }}'
                    and ledger.file = lake_files_now.file
                    and ledger.size = lake_files_now.size
                    and ledger.last_modified = lake_files_now.last_modified
                    and ledger.definition = lake_files_now.definition
            )
            {%- endif %}
        {%- endset -%}
        {%- do run_query(query) -%}
        {%- set counts = run_query(
            "select (select count(*) from lake_files_new), (select count(*) from lake_files_now)"
        ).rows[0] -%}
        {%- do log(this.identifier ~ ': ' ~ counts[0] ~ ' of ' ~ counts[1]
            ~ ' lake files new or rewritten since it last read them', info=True) -%}
    {%- endif -%}
{%- endmacro %}

{#- The model's body: the keys (`key_expression` over the raw rows) of the files
    lake_files_new lists, or none when the model must compare every row (off DuckDB's lake, on
    a full build, or when the lake had no file as the model compiled: a file landed since is
    then read through the staging view and compared). -#}
{% macro lake_files_changed_keys(source_name, table_name, key_expression) -%}
    {%- set lake_glob = lake_files_glob(source_name, table_name) -%}
    {%- if not lake_glob or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query("select count(*) from glob('" ~ lake_glob ~ "')") -%}
    {%- if found.columns[0].values()[0] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set keys -%}
        select distinct {{ key_expression }} as changed_key
        from read_parquet('{{ lake_glob }}', filename = true, union_by_name = true)
        where filename in (select file from lake_files_new)
    {%- endset -%}
    {{ return(keys) }}
{%- endmacro %}

{#- Post-hook: the listing becomes the model's ledger rows. -#}
{% macro lake_files_record(source_name, table_name) -%}
    {%- if lake_files_glob(source_name, table_name) -%}
        {%- set ledger = lake_files_ledger() -%}
        {%- do run_query("create schema if not exists " ~ ledger.include(identifier=false)) -%}
        {%- do run_query(
            "create table if not exists " ~ ledger ~ " (model varchar, file varchar, size bigint, "
            ~ "last_modified timestamp with time zone, definition varchar)"
        ) -%}
        {%- do run_query("delete from " ~ ledger ~ " where model = '" ~ this.identifier ~ "'") -%}
        {%- do run_query(
            "insert into " ~ ledger ~ " select '" ~ this.identifier ~ "', file, size, "
            ~ "last_modified, definition from lake_files_now"
        ) -%}
        {%- do run_query("drop table if exists lake_files_now") -%}
        drop table if exists lake_files_new
    {%- endif -%}
{%- endmacro %}
