-- One row per member per cutoff date (the first day of each month in the data range, or var
-- pit_cutoff_dates) for every member enrolled before the cutoff; features use only data dated
-- strictly before the cutoff, so a training row never sees its own future.
{%- set cutoff_dates = pit_cutoff_dates() %}

with

cutoffs as (
    {%- for cutoff_date in cutoff_dates %}
    select cast('{{ cutoff_date }}' as date) as cutoff_date
    {{ "union all" if not loop.last }}
    {%- else %}
    select cast(null as date) as cutoff_date
    where 1 = 0
    {%- endfor %}
),

{{ member_features_ctes('cutoffs') }},

keyed as (
    select
        member_id || ':' || cast(cutoff_date as {{ dbt.type_string() }}) as member_cutoff_id,
        *
    from member_features
)

select * from keyed
