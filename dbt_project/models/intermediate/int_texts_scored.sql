-- One row per survey comment and per call note with its member link, date, sentiment, topics
-- (the taxonomy's keys, comma-separated) and effort mentions (warehouse/text). No text itself.
with

survey_responses as (
    select
        response_id,
        submitted_at,
        member_id
    from {{ ref('int_survey_responses_scored') }}
),

comment_sentiments as (
    select * from {{ ref('stg_enriched__survey_sentiments') }}
),

calls as (
    select
        call_id,
        started_at,
        member_id
    from {{ ref('int_calls_flagged') }}
),

call_notes as (
    select * from {{ ref('stg_enriched__call_notes') }}
),

stacked as (
    select
        'survey_comment' as text_source,
        survey_responses.response_id as record_id,
        survey_responses.member_id,
        survey_responses.submitted_at as written_at,
        comment_sentiments.comment_sentiment as sentiment,
        comment_sentiments.comment_sentiment_label as sentiment_label,
        comment_sentiments.comment_topics as topics,
        comment_sentiments.comment_effort_mentions as effort_mentions,
        comment_sentiments.sentiment_model
    from comment_sentiments
    inner join survey_responses
        on comment_sentiments.response_id = survey_responses.response_id
    union all
    select
        'call_note' as text_source,
        calls.call_id as record_id,
        calls.member_id,
        calls.started_at as written_at,
        call_notes.note_sentiment as sentiment,
        call_notes.note_sentiment_label as sentiment_label,
        call_notes.note_topics as topics,
        call_notes.note_effort_mentions as effort_mentions,
        call_notes.sentiment_model
    from call_notes
    inner join calls
        on call_notes.call_id = calls.call_id
),

typed as (
    select
        text_source,
        record_id,
        member_id,
        written_at,
        sentiment_label,
        sentiment_model,
        cast(written_at as date) as written_date,
        cast(sentiment as {{ type_double() }}) as sentiment,
        coalesce(topics, '') as topics,
        cast(coalesce(effort_mentions, 0) as bigint) as effort_mentions
    from stacked
)

select * from typed
