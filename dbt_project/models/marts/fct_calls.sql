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
        where {{ incremental_rows_filter(
        'flagged_calls',
        'call_id',
        [
            'member_id',
            'link_method',
            'is_repeat_contact',
            'has_repeat_contact_after',
            'is_first_contact_resolution',
            'is_positive_moment',
        ],
    ) }}
    {%- endif %}
)

select * from filtered
