-- The email's normalisation and the comment's redaction (regular expressions) come after the
-- dedupe: DuckDB computes every column of every landed row under the dedupe's union, so anything
-- there costs every reader of this view, even one that never selects the column (at 1M members the
-- five models that read the staging views of members, responses and calls took 23 s instead of 37
-- s).
with

landed_responses as (
    {{ source_rows('surveys', 'responses') }}
),

renamed as (
    select
        trim(response_id) as response_id,
        {{ to_utc('submitted_at') }} as submitted_at,
        nullif(trim(member_id), '') as member_id,
        email,
        {{ normalize_code('survey_type') }} as survey_type,
        {{ normalize_code('channel') }} as response_channel,
        cast(nps as bigint) as nps_score,
        cast(csat as bigint) as csat_score,
        cast(ces as bigint) as ces_score,
        cast(emotion_valued as bigint) as valued_score,
        cast(emotion_confident as bigint) as confident_score,
        cast(emotion_informed as bigint) as informed_score,
        cast(emotion_protected as bigint) as protected_score,
        cast(emotion_helped as bigint) as helped_score,
        nullif(trim(comment), '') as comment_text,
        nullif(trim(related_call_id), '') as related_call_id,
        nullif(trim(related_transaction_id), '') as related_transaction_id,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from landed_responses
    where response_id is not null
),

deduplicated as (
    {{ dedupe(
        'renamed',
        'response_id',
        [
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
            "coalesce(source_row, 0)",
        ],
    ) }}
),

final as (
    select
        response_id,
        submitted_at,
        member_id,
        {{ normalize_email('email') }} as respondent_email,
        survey_type,
        response_channel,
        nps_score,
        csat_score,
        ces_score,
        valued_score,
        confident_score,
        informed_score,
        protected_score,
        helped_score,
        comment_text,
        {{ redact_contact_details('comment_text') }} as comment_redacted,
        related_call_id,
        related_transaction_id,
        source_file,
        source_row,
        source_interval_end_at
    from deduplicated
)

select * from final
