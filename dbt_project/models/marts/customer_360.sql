-- One row per member enrolled by the as-of date (var as_of_date, default the last activity
-- date): features from data dated on or before it, i.e. before the cutoff as_of_date + 1 day.
-- Members enrolled later are left out (they were not members yet); the warning test on
-- member_id (cx_missing_from) counts them.
{%- if var('as_of_date') %}
    {%- set as_of_expression = "cast('" ~ var('as_of_date') ~ "' as date)" %}
{%- else %}
    {%- set as_of_expression = 'last_activity_date' %}
{%- endif %}

with

last_activity as (
    select max(activity_date) as last_activity_date
    from {{ ref('fct_member_daily') }}
),

cutoffs as (
    select {{ dbt.dateadd('day', 1, as_of_expression) }} as cutoff_date
    from last_activity
),

typed_cutoffs as (
    select cast(cutoff_date as date) as cutoff_date
    from cutoffs
    where cutoff_date is not null
),

{{ member_features_ctes('typed_cutoffs') }},

member_attributes as (
    select
        member_id,
        region,
        tier,
        marketing_opt_in
    from {{ ref('dim_members') }}
),

described as (
    select
        member_features.member_id,
        {{ dbt.dateadd('day', -1, 'member_features.cutoff_date') }} as as_of_date,
        member_attributes.region,
        member_attributes.tier,
        member_attributes.marketing_opt_in,
        member_features.tenure_days,
        member_features.is_closed,
        member_features.days_since_last_transaction,
        member_features.days_since_first_transaction,
        member_features.purchase_days_total,
        member_features.transactions_30d,
        member_features.spend_30d,
        member_features.transactions_90d,
        member_features.spend_90d,
        member_features.transactions_365d,
        member_features.spend_365d,
        member_features.transactions_30d_change,
        member_features.spend_30d_change,
        member_features.spend_90d_change,
        member_features.points_balance,
        member_features.store_share_365d,
        member_features.online_share_365d,
        member_features.app_share_365d,
        member_features.survey_responses_total,
        member_features.latest_nps_score,
        member_features.nps_score_change,
        member_features.latest_csat_score,
        member_features.csat_score_change,
        member_features.latest_ces_score,
        member_features.ces_score_change,
        member_features.latest_engagement_index,
        member_features.engagement_index_change,
        member_features.negative_moments_30d,
        member_features.positive_moments_30d,
        member_features.negative_moments_90d,
        member_features.positive_moments_90d,
        member_features.calls_90d,
        member_features.unresolved_calls_90d,
        member_features.escalated_calls_90d,
        member_features.repeat_contacts_90d,
        member_features.avg_queue_seconds_90d,
        {%- for topic in var('text_topics') %}
            member_features.{{ topic }}_mentions_90d,
        {%- endfor %}
        member_features.effort_mentions_90d,
        member_features.negative_texts_90d,
        member_features.is_effort_from_words_90d
    from member_features
    inner join member_attributes
        on member_features.member_id = member_attributes.member_id
),

typed as (
    select
        member_id,
        cast(as_of_date as date) as as_of_date,
        region,
        tier,
        marketing_opt_in,
        tenure_days,
        is_closed,
        days_since_last_transaction,
        days_since_first_transaction,
        purchase_days_total,
        transactions_30d,
        spend_30d,
        transactions_90d,
        spend_90d,
        transactions_365d,
        spend_365d,
        transactions_30d_change,
        spend_30d_change,
        spend_90d_change,
        points_balance,
        store_share_365d,
        online_share_365d,
        app_share_365d,
        survey_responses_total,
        latest_nps_score,
        nps_score_change,
        latest_csat_score,
        csat_score_change,
        latest_ces_score,
        ces_score_change,
        latest_engagement_index,
        engagement_index_change,
        negative_moments_30d,
        positive_moments_30d,
        negative_moments_90d,
        positive_moments_90d,
        calls_90d,
        unresolved_calls_90d,
        escalated_calls_90d,
        repeat_contacts_90d,
        avg_queue_seconds_90d,
        {%- for topic in var('text_topics') %}
            {{ topic }}_mentions_90d,
        {%- endfor %}
        effort_mentions_90d,
        negative_texts_90d,
        is_effort_from_words_90d
    from described
)

select * from typed
