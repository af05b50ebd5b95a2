{{
    config(
        materialized='incremental',
        unique_key='call_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

flagged_calls as (
    select * from {{ ref('int_calls_flagged') }}
),

filtered as (
    select * from flagged_calls
    {% if is_incremental() -%}
        where {{ incremental_rows_filter('flagged_calls', 'call_id') }}
    {%- endif %}
)

select * from filtered
