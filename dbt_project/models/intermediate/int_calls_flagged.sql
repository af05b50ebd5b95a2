-- One row per call-center contact with its member link and its experience flags. Repeat
-- contacts look at the member's previous and next contact, so this reads every call. An agent's
-- note read as negative (warehouse/text) makes the contact a negative moment too.
with

calls as (
    select * from {{ ref('stg_calls__contacts') }}
),

negative_notes as (
    select call_id
    from {{ ref('stg_enriched__call_notes') }}
    where note_sentiment_label = 'negative'
),

identity_links as (
    select
        record_id,
        member_id,
        link_method
    from {{ ref('int_identity_links') }}
    where record_type = 'call'
),

linked as (
    select
        calls.call_id,
        calls.started_at,
        identity_links.member_id,
        identity_links.link_method,
        calls.contact_channel,
        calls.contact_reason,
        calls.queue_seconds,
        calls.handle_seconds,
        calls.transfer_count,
        calls.agent_id,
        calls.is_resolved,
        calls.is_escalated,
        calls.source_interval_end_at
    from calls
    left join identity_links
        on calls.call_id = identity_links.record_id
),

sequenced as (
    select
        *,
        case
            when member_id is not null
                then lag(started_at) over (
                    partition by member_id order by started_at, call_id
                )
        end as previous_started_at,
        case
            when member_id is not null
                then lead(started_at) over (
                    partition by member_id order by started_at, call_id
                )
        end as next_started_at
    from linked
),

flagged as (
    select
        call_id,
        started_at,
        cast(started_at as date) as started_date,
        member_id,
        link_method,
        contact_channel,
        contact_reason,
        queue_seconds,
        handle_seconds,
        transfer_count,
        agent_id,
        is_resolved,
        coalesce(is_resolved = false, false) as is_unresolved,
        coalesce(is_escalated, false) as is_escalated,
        coalesce(transfer_count > 0, false) as is_transferred,
        coalesce(queue_seconds > {{ var('long_wait_seconds') }}, false) as is_long_wait,
        coalesce(
            previous_started_at
            >= {{ dbt.dateadd('day', -var('repeat_contact_days'), 'started_at') }},
            false
        ) as is_repeat_contact,
        coalesce(
            next_started_at
            <= {{ dbt.dateadd('day', var('repeat_contact_days'), 'started_at') }},
            false
        ) as has_repeat_contact_after,
        source_interval_end_at
    from sequenced
),

classified as (
    select
        *,
        coalesce(is_resolved, false) and not has_repeat_contact_after
            as is_first_contact_resolution,
        is_unresolved
        or is_escalated
        or is_long_wait
        -- A subquery, not a join: fct_calls keeps its columns (on_schema_change fail).
        -- noqa: disable=RF02
        or call_id in (select negative_notes.call_id from negative_notes) as is_negative_moment,
        coalesce(is_resolved, false)
        and not is_escalated
        and not is_transferred
        and not is_repeat_contact
        and coalesce(queue_seconds <= {{ var('short_wait_seconds') }}, false)
        and call_id not in (select negative_notes.call_id from negative_notes)
        -- noqa: enable=RF02
            as is_positive_moment
    from flagged
)

select * from classified
