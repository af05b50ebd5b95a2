with

scored_notes as (
    {{ source_rows('enriched', 'call_notes') }}
),

renamed as (
    select
        trim(call_id) as call_id,
        cast(note_sentiment as {{ type_double() }}) as note_sentiment,
        {{ normalize_code('note_sentiment_label') }} as note_sentiment_label,
        coalesce(note_topics, '') as note_topics,
        cast(coalesce(note_effort_mentions, 0) as bigint) as note_effort_mentions,
        sentiment_model,
        _source_file as source_file,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from scored_notes
    where call_id is not null
),

deduplicated as (
    {{ dedupe(
        'renamed',
        'call_id',
        [
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
        ],
    ) }}
)

select * from deduplicated
