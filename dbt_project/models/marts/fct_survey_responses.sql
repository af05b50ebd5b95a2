{{
    config(
        materialized='incremental',
        unique_key='response_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

scored_responses as (
    select * from {{ ref('int_survey_responses_scored') }}
),

filtered as (
    select * from scored_responses
    {% if is_incremental() -%}
        where {{ incremental_rows_filter('scored_responses', 'response_id') }}
    {%- endif %}
)

select * from filtered
