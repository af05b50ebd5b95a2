with

scored_comments as (
    {{ source_rows('enriched', 'survey_sentiment') }}
),

renamed as (
    select
        trim(response_id) as response_id,
        cast(comment_sentiment as {{ type_double() }}) as comment_sentiment,
        {{ normalize_code('comment_sentiment_label') }} as comment_sentiment_label,
        coalesce(comment_topics, '') as comment_topics,
        cast(coalesce(comment_effort_mentions, 0) as bigint) as comment_effort_mentions,
        coalesce(sentiment_model, 'vader') as sentiment_model,
        _source_file as source_file,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from scored_comments
    where response_id is not null
),

deduplicated as (
    {{ dedupe(
        'renamed',
        'response_id',
        [
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
        ],
    ) }}
)

select * from deduplicated
