with

landed_contacts as (
    {{ source_rows('calls', 'contacts') }}
),

renamed as (
    select
        trim(call_id) as call_id,
        {{ to_utc('started_at') }} as started_at,
        nullif(trim(member_id), '') as member_id,
        {{ normalize_phone('caller_phone') }} as caller_phone_e164,
        {{ normalize_code('channel') }} as contact_channel,
        cast(queue_seconds as bigint) as queue_seconds,
        cast(handle_seconds as bigint) as handle_seconds,
        {{ normalize_code('reason') }} as contact_reason,
        resolved as is_resolved,
        escalated as is_escalated,
        cast(transfers as bigint) as transfer_count,
        nullif(trim(agent_id), '') as agent_id,
        nullif(trim(notes), '') as notes_text,
        {{ redact_contact_details("nullif(trim(notes), '')") }} as notes_redacted,
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
)

select * from deduplicated
