{#- For a landed source table: one row per key landed more than once with values that differ
    (in one landing or two), which deduplication then settles without a word: the staging
    models keep the version of the latest landing (members: of the latest updated_at first; see
    dbt_project/README.md, Deduplication). Declared columns are compared, lineage columns (`_`)
    are not. With `versioned_by`, rows that differ in it are versions of the record (an update),
    and only rows of one version are compared; columns in `ignore` (transactions' recorded_at,
    which only stamps a delivery) are not compared. Configured at severity warn: the build goes on,
    and says how many keys and which. A table with no partition yet has nothing to compare.

    Each ingestion manifest counts the same for its own landing (`conflicting_duplicates`). -#}
{% test cx_conflicting_duplicates(model, key, versioned_by=none, ignore=[]) %}
{%- set node = cx_source_node_of(model) -%}
{%- set lineage = ['_extra_fields', '_source_file', '_source_row', '_interval_start',
    '_interval_end'] -%}
{%- set skipped = lineage + ignore -%}
{%- set compared = (node.columns.keys() | reject('in', skipped) | list) if node else [key] -%}
{%- set version_key = [key] + ([versioned_by] if versioned_by else []) -%}

with

landed_rows as (
    {% if node -%}
    {{ source_rows(node.source_name, node.name) }}
    {%- else -%}
    select * from {{ model }}
    {%- endif %}
),

repeated_keys as (
    select {{ key }} as repeated_key
    from landed_rows
    group by {{ key }}
    having count(*) > 1
),

distinct_rows as (
    select distinct {{ compared | join(', ') }}
    from landed_rows
    where {{ key }} in (select repeated_key from repeated_keys)
),

conflicting as (
    select
        {{ version_key | join(', ') }},
        count(*) as distinct_versions
    from distinct_rows
    group by {{ version_key | join(', ') }}
    having count(*) > 1
)

select * from conflicting

{% endtest %}
