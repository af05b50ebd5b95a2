-- One row per member per cutoff date (the first day of each month in the data range, or var
-- pit_cutoff_dates) for every member enrolled before the cutoff; features use only data dated
-- strictly before the cutoff, so a training row never sees its own future.
--
-- Incremental by cutoff: a cutoff's rows depend only on the inputs dated before it (daily
-- activity, survey responses, enrolments and closures) and on the feature definitions, so each
-- cutoff carries a fingerprint of exactly those, and a run rewrites only the cutoffs that are
-- new or whose fingerprint changed (a late row, a backfilled interval, a new definition). An
-- ordinary day's data is dated after every cutoff and rewrites nothing; a new month adds one.
{{
    config(
        materialized='incremental',
        unique_key='cutoff_date',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ pit_delete_retired_cutoffs() }}",
    )
}}
{%- set features_sql = member_features_ctes('cutoffs') %}
{%- set fingerprints = pit_input_fingerprints(pit_cutoff_dates(), local_md5(features_sql)) %}
{%- set stale = pit_stale_cutoffs(fingerprints) %}

with

cutoffs as (
    {%- for cutoff_date in stale %}
    select
        cast('{{ cutoff_date }}' as date) as cutoff_date,
        cast('{{ fingerprints[cutoff_date] }}' as {{ dbt.type_string() }}) as inputs_fingerprint
    {{ "union all" if not loop.last }}
    {%- else %}
    select
        cast(null as date) as cutoff_date,
        cast(null as {{ dbt.type_string() }}) as inputs_fingerprint
    where 1 = 0
    {%- endfor %}
),

{{ features_sql }},

keyed as (
    select
        member_features.member_id || ':' || cast(member_features.cutoff_date as {{ dbt.type_string() }})
        as member_cutoff_id,
        member_features.*,
        cutoffs.inputs_fingerprint
    from member_features
    inner join cutoffs
        on member_features.cutoff_date = cutoffs.cutoff_date
)

select * from keyed
