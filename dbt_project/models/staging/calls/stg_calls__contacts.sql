-- The phone's normalisation and the notes' redaction (regular expressions) come after the dedupe:
-- DuckDB computes every column of every landed row under the dedupe's union, so anything there
-- costs every reader of this view, even one that never selects the column (at 1M members the five
-- models that read the staging views of members, responses and calls took 23 s instead of 37 s).
with

landed_contacts as (
    {{ source_rows('calls', 'contacts') }}
),

renamed as (
    select
        trim(call_id) as call_id,
        {{ to_utc('started_at') }} as started_at,
        nullif(trim(member_id), '') as member_id,
        caller_phone,
        {{ normalize_code('channel') }} as contact_channel,
        cast(queue_seconds as bigint) as queue_seconds,
        cast(handle_seconds as bigint) as handle_seconds,
        {{ normalize_code('reason') }} as contact_reason,
        resolved as is_resolved,
        escalated as is_escalated,
        cast(transfers as bigint) as transfer_count,
        nullif(trim(agent_id), '') as agent_id,
        nullif(trim(notes), '') as notes_text,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from landed_contacts
    where call_id is not null
),

deduplicated as (
    {{ dedupe(
        'renamed',
        'call_id',
        [
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
            "coalesce(source_row, 0)",
        ],
    ) }}
),

final as (
    select
        call_id,
        started_at,
        member_id,
        {{ normalize_phone('caller_phone') }} as caller_phone_e164,
        contact_channel,
        queue_seconds,
        handle_seconds,
        contact_reason,
        is_resolved,
        is_escalated,
        transfer_count,
        agent_id,
        notes_text,
        {{ redact_contact_details('notes_text') }} as notes_redacted,
        source_file,
        source_row,
        source_interval_end_at
    from deduplicated
)

select * from final
