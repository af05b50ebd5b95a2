-- One row per member per day with any activity. Incremental by member: each row keeps
-- inputs_hash, the XOR of its fact rows' hashes; the pre-hook finds the members whose facts'
-- hash no longer matches their stored days (member_daily_remove_changed), deletes their days,
-- and this statement writes them again. A day of new data rewrites the members it touches.
--
-- One aggregate over the three sources' rows stacked (union all), not an aggregate per source
-- joined on the union of their member-days: the joins held three tables of ~24M member-days in
-- memory at a million members, which spilled under the build's memory limit (81 s against 48 s
-- unbounded); the stacked aggregate writes the same rows in less memory.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ member_daily_remove_changed() }}",
        post_hook="{{ member_daily_drop_changed() }}",
    )
}}
{%- set changed = 'member_daily_changed' if is_incremental() else none %}

with

members as (
    select member_id from {{ ref('dim_members') }}
    {%- if changed %}
    where member_id in (select member_id from {{ changed }})
    {%- endif %}
),

{{ member_daily_fact_ctes(members=changed) }},

fact_rows as (
    select
        member_id,
        occurred_date as activity_date,
        amount,
        1 as transaction_count,
        case when purchase_channel = 'store' then 1 else 0 end as store_transaction_count,
        case when purchase_channel = 'online' then 1 else 0 end as online_transaction_count,
        case when purchase_channel = 'app' then 1 else 0 end as app_transaction_count,
        coalesce(points_earned, 0) as points_earned,
        coalesce(points_redeemed, 0) as points_redeemed,
        0 as call_count,
        0 as unresolved_call_count,
        0 as escalated_call_count,
        0 as long_wait_call_count,
        0 as repeat_contact_count,
        cast(null as bigint) as queue_seconds,
        0 as survey_response_count,
        0 as negative_moment_count,
        0 as positive_moment_count,
        row_hash
    from transactions
    union all
    select
        member_id,
        started_date as activity_date,
        null as amount,
        0 as transaction_count,
        0 as store_transaction_count,
        0 as online_transaction_count,
        0 as app_transaction_count,
        0 as points_earned,
        0 as points_redeemed,
        1 as call_count,
        case when is_unresolved then 1 else 0 end as unresolved_call_count,
        case when is_escalated then 1 else 0 end as escalated_call_count,
        case when is_long_wait then 1 else 0 end as long_wait_call_count,
        case when is_repeat_contact then 1 else 0 end as repeat_contact_count,
        queue_seconds,
        0 as survey_response_count,
        case when is_negative_moment then 1 else 0 end as negative_moment_count,
        case when is_positive_moment then 1 else 0 end as positive_moment_count,
        row_hash
    from calls
    union all
    select
        member_id,
        submitted_date as activity_date,
        null as amount,
        0 as transaction_count,
        0 as store_transaction_count,
        0 as online_transaction_count,
        0 as app_transaction_count,
        0 as points_earned,
        0 as points_redeemed,
        0 as call_count,
        0 as unresolved_call_count,
        0 as escalated_call_count,
        0 as long_wait_call_count,
        0 as repeat_contact_count,
        cast(null as bigint) as queue_seconds,
        1 as survey_response_count,
        case when is_negative_moment then 1 else 0 end as negative_moment_count,
        case when is_positive_moment then 1 else 0 end as positive_moment_count,
        row_hash
    from survey_responses
),

daily as (
    select
        member_id,
        activity_date,
        cast(coalesce(sum(amount), 0) as numeric(18, 2)) as spend_amount,
        cast(sum(transaction_count) as bigint) as transaction_count,
        cast(sum(store_transaction_count) as bigint) as store_transaction_count,
        cast(sum(online_transaction_count) as bigint) as online_transaction_count,
        cast(sum(app_transaction_count) as bigint) as app_transaction_count,
        cast(sum(points_earned) as bigint) as points_earned,
        cast(sum(points_redeemed) as bigint) as points_redeemed,
        cast(sum(call_count) as bigint) as call_count,
        cast(sum(unresolved_call_count) as bigint) as unresolved_call_count,
        cast(sum(escalated_call_count) as bigint) as escalated_call_count,
        cast(sum(long_wait_call_count) as bigint) as long_wait_call_count,
        cast(sum(repeat_contact_count) as bigint) as repeat_contact_count,
        cast(count(queue_seconds) as bigint) as queued_call_count,
        cast(coalesce(sum(queue_seconds), 0) as bigint) as queue_seconds_total,
        cast(sum(survey_response_count) as bigint) as survey_response_count,
        cast(sum(negative_moment_count) as bigint) as negative_moment_count,
        cast(sum(positive_moment_count) as bigint) as positive_moment_count,
        cast(bit_xor(row_hash) as bigint) as inputs_hash
    from fact_rows
    where member_id in (select member_id from members)
    group by member_id, activity_date
)

select * from daily
