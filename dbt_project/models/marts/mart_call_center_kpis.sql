with

calls as (
    select * from {{ ref('fct_calls') }}
),

monthly as (
    select
        cast({{ dbt.date_trunc('month', 'started_date') }} as date) as call_month,
        count(*) as call_count,
        sum(case when is_first_contact_resolution then 1 else 0 end)
            as first_contact_resolution_count,
        sum(case when is_repeat_contact then 1 else 0 end) as repeat_contact_count,
        sum(case when is_escalated then 1 else 0 end) as escalated_count,
        sum(case when is_long_wait then 1 else 0 end) as long_wait_count,
        avg(cast(handle_seconds as {{ type_double() }})) as avg_handle_seconds,
        avg(cast(queue_seconds as {{ type_double() }})) as avg_queue_seconds
    from calls
    group by {{ dbt.date_trunc("month", "started_date") }}
),

rated as (
    select
        call_month,
        cast(call_count as bigint) as call_count,
        cast(1.0 * first_contact_resolution_count / call_count as {{ type_double() }})
            as first_contact_resolution_rate,
        cast(avg_handle_seconds as {{ type_double() }}) as avg_handle_seconds,
        cast(avg_queue_seconds as {{ type_double() }}) as avg_queue_seconds,
        cast(1.0 * repeat_contact_count / call_count as {{ type_double() }})
            as repeat_contact_rate,
        cast(1.0 * escalated_count / call_count as {{ type_double() }}) as escalation_rate,
        cast(1.0 * long_wait_count / call_count as {{ type_double() }}) as long_wait_rate
    from monthly
)

select * from rated
