-- One row per survey response with its member link, NPS category, CSAT top-two-box flag,
-- engagement index, comment sentiment and the moments it counts as.
with

survey_responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

identity_links as (
    select
        record_id,
        member_id,
        link_method
    from {{ ref('int_identity_links') }}
    where record_type = 'survey_response'
),

comment_sentiments as (
    select
        response_id,
        comment_sentiment,
        comment_sentiment_label
    from {{ ref('stg_enriched__survey_sentiments') }}
),

joined as (
    select
        survey_responses.response_id,
        survey_responses.submitted_at,
        identity_links.member_id,
        identity_links.link_method,
        survey_responses.survey_type,
        survey_responses.response_channel,
        survey_responses.nps_score,
        survey_responses.csat_score,
        survey_responses.ces_score,
        survey_responses.valued_score,
        survey_responses.confident_score,
        survey_responses.informed_score,
        survey_responses.protected_score,
        survey_responses.helped_score,
        comment_sentiments.comment_sentiment,
        comment_sentiments.comment_sentiment_label,
        survey_responses.related_call_id,
        survey_responses.related_transaction_id,
        survey_responses.source_interval_end_at,
        survey_responses.comment_text is not null as has_comment
    from survey_responses
    left join identity_links
        on survey_responses.response_id = identity_links.record_id
    left join comment_sentiments
        on survey_responses.response_id = comment_sentiments.response_id
),

summed_emotions as (
    select
        *,
        coalesce(valued_score, 0)
        + coalesce(confident_score, 0)
        + coalesce(informed_score, 0)
        + coalesce(protected_score, 0)
        + coalesce(helped_score, 0) as emotion_score_sum,
        case when valued_score is null then 0 else 1 end
        + case when confident_score is null then 0 else 1 end
        + case when informed_score is null then 0 else 1 end
        + case when protected_score is null then 0 else 1 end
        + case when helped_score is null then 0 else 1 end as emotion_item_count
    from joined
),

scored as (
    select
        *,
        -- Mean agreement (1-5) over the items answered, rescaled to 0-100.
        case
            when emotion_item_count > 0
                then cast(
                    (cast(emotion_score_sum as {{ type_double() }}) / emotion_item_count - 1) * 25
                    as {{ type_double() }}
                )
        end as engagement_index,
        case
            when nps_score >= {{ var('promoter_min_score') }} then 'promoter'
            when nps_score > {{ var('detractor_max_score') }} then 'passive'
            when nps_score >= 0 then 'detractor'
        end as nps_category,
        case
            when csat_score is not null
                then csat_score >= {{ var('csat_top_two_box_min') }}
        end as is_csat_top_two_box
    from summed_emotions
),

flagged as (
    select
        response_id,
        submitted_at,
        cast(submitted_at as date) as submitted_date,
        member_id,
        link_method,
        survey_type,
        response_channel,
        nps_score,
        nps_category,
        csat_score,
        is_csat_top_two_box,
        ces_score,
        valued_score,
        confident_score,
        informed_score,
        protected_score,
        helped_score,
        engagement_index,
        has_comment,
        comment_sentiment,
        comment_sentiment_label,
        related_call_id,
        related_transaction_id,
        source_interval_end_at,
        coalesce(nps_category = 'promoter', false) as is_promoter,
        coalesce(nps_category = 'detractor', false) as is_detractor,
        coalesce(nps_category = 'detractor', false)
        or coalesce(comment_sentiment_label = 'negative', false) as is_negative_moment,
        coalesce(nps_category = 'promoter', false)
        or coalesce(comment_sentiment_label = 'positive', false) as is_positive_moment
    from scored
)

select * from flagged
