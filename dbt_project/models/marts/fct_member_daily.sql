-- One row per member per day with any activity. Incremental by member: each row keeps
-- inputs_hash, the XOR of its fact rows' hashes; the pre-hook finds the members whose facts'
-- hash no longer matches their stored days (member_daily_remove_changed), deletes their days,
-- and this statement writes them again. A day of new data rewrites the members it touches.
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

daily_transactions as (
    select
        member_id,
        occurred_date as activity_date,
        sum(amount) as spend_amount,
        count(*) as transaction_count,
        sum(case when purchase_channel = 'store' then 1 else 0 end) as store_transaction_count,
        sum(case when purchase_channel = 'online' then 1 else 0 end) as online_transaction_count,
        sum(case when purchase_channel = 'app' then 1 else 0 end) as app_transaction_count,
        sum(coalesce(points_earned, 0)) as points_earned,
        sum(coalesce(points_redeemed, 0)) as points_redeemed,
        bit_xor(row_hash) as inputs_hash
    from transactions
    group by member_id, occurred_date
),

daily_calls as (
    select
        member_id,
        started_date as activity_date,
        count(*) as call_count,
        sum(case when is_unresolved then 1 else 0 end) as unresolved_call_count,
        sum(case when is_escalated then 1 else 0 end) as escalated_call_count,
        sum(case when is_long_wait then 1 else 0 end) as long_wait_call_count,
        sum(case when is_repeat_contact then 1 else 0 end) as repeat_contact_count,
        count(queue_seconds) as queued_call_count,
        sum(coalesce(queue_seconds, 0)) as queue_seconds_total,
        sum(case when is_negative_moment then 1 else 0 end) as negative_moment_count,
        sum(case when is_positive_moment then 1 else 0 end) as positive_moment_count,
        bit_xor(row_hash) as inputs_hash
    from calls
    group by member_id, started_date
),

daily_survey_responses as (
    select
        member_id,
        submitted_date as activity_date,
        count(*) as survey_response_count,
        sum(case when is_negative_moment then 1 else 0 end) as negative_moment_count,
        sum(case when is_positive_moment then 1 else 0 end) as positive_moment_count,
        bit_xor(row_hash) as inputs_hash
    from survey_responses
    group by member_id, submitted_date
),

member_days as (
    select
        member_id,
        activity_date
    from daily_transactions
    union
    select
        member_id,
        activity_date
    from daily_calls
    union
    select
        member_id,
        activity_date
    from daily_survey_responses
),

joined as (
    select
        member_days.member_id,
        member_days.activity_date,
        cast(coalesce(daily_transactions.spend_amount, 0) as numeric(18, 2)) as spend_amount,
        cast(coalesce(daily_transactions.transaction_count, 0) as bigint) as transaction_count,
        cast(coalesce(daily_transactions.store_transaction_count, 0) as bigint)
            as store_transaction_count,
        cast(coalesce(daily_transactions.online_transaction_count, 0) as bigint)
            as online_transaction_count,
        cast(coalesce(daily_transactions.app_transaction_count, 0) as bigint)
            as app_transaction_count,
        cast(coalesce(daily_transactions.points_earned, 0) as bigint) as points_earned,
        cast(coalesce(daily_transactions.points_redeemed, 0) as bigint) as points_redeemed,
        cast(coalesce(daily_calls.call_count, 0) as bigint) as call_count,
        cast(coalesce(daily_calls.unresolved_call_count, 0) as bigint) as unresolved_call_count,
        cast(coalesce(daily_calls.escalated_call_count, 0) as bigint) as escalated_call_count,
        cast(coalesce(daily_calls.long_wait_call_count, 0) as bigint) as long_wait_call_count,
        cast(coalesce(daily_calls.repeat_contact_count, 0) as bigint) as repeat_contact_count,
        cast(coalesce(daily_calls.queued_call_count, 0) as bigint) as queued_call_count,
        cast(coalesce(daily_calls.queue_seconds_total, 0) as bigint) as queue_seconds_total,
        cast(coalesce(daily_survey_responses.survey_response_count, 0) as bigint)
            as survey_response_count,
        cast(
            coalesce(daily_calls.negative_moment_count, 0)
            + coalesce(daily_survey_responses.negative_moment_count, 0)
            as bigint
        ) as negative_moment_count,
        cast(
            coalesce(daily_calls.positive_moment_count, 0)
            + coalesce(daily_survey_responses.positive_moment_count, 0)
            as bigint
        ) as positive_moment_count,
        cast({{ xor_bigints(
            xor_bigints(
                'coalesce(daily_transactions.inputs_hash, 0)',
                'coalesce(daily_calls.inputs_hash, 0)',
            ),
            'coalesce(daily_survey_responses.inputs_hash, 0)',
        ) }} as bigint) as inputs_hash
    from member_days
    inner join members
        on member_days.member_id = members.member_id
    left join daily_transactions
        on
            member_days.member_id = daily_transactions.member_id
            and member_days.activity_date = daily_transactions.activity_date
    left join daily_calls
        on
            member_days.member_id = daily_calls.member_id
            and member_days.activity_date = daily_calls.activity_date
    left join daily_survey_responses
        on
            member_days.member_id = daily_survey_responses.member_id
            and member_days.activity_date = daily_survey_responses.activity_date
)

select * from joined
