with

customers as (
    select * from {{ ref('customer_360') }}
),

segmented as (
    select
        case
            when latest_engagement_index is null then 'Unmeasured'
            when latest_engagement_index >= {{ var('engaged_min_index') }} then 'Engaged'
            when latest_engagement_index >= {{ var('swing_min_index') }} then 'Swing'
            else 'Disengaged'
        end as engagement_segment,
        latest_engagement_index,
        spend_365d,
        transactions_365d,
        latest_nps_score
    from customers
),

aggregated as (
    select
        engagement_segment,
        count(*) as member_count,
        avg(latest_engagement_index) as avg_engagement_index,
        avg(spend_365d) as avg_spend_365d,
        avg(transactions_365d) as avg_transactions_365d,
        avg(latest_nps_score) as avg_nps_score
    from segmented
    group by engagement_segment
),

compared as (
    select
        aggregated.engagement_segment,
        cast(aggregated.member_count as bigint) as member_count,
        cast(aggregated.avg_engagement_index as {{ type_double() }}) as avg_engagement_index,
        cast(aggregated.avg_spend_365d as {{ type_double() }}) as avg_spend_365d,
        cast(aggregated.avg_transactions_365d as {{ type_double() }}) as avg_transactions_365d,
        cast(aggregated.avg_nps_score as {{ type_double() }}) as avg_nps_score,
        -- The primer's "twice as valuable": spend relative to the Disengaged segment. Segments are
        -- spelt as ml_scores.predicted_segment spells them (ml/labels.py SEGMENTS).
        cast(
            case
                when disengaged.avg_spend_365d > 0
                    then aggregated.avg_spend_365d / disengaged.avg_spend_365d
            end
            as {{ type_double() }}
        ) as spend_index_vs_disengaged
    from aggregated
    left join aggregated as disengaged
        on disengaged.engagement_segment = 'Disengaged'
)

select * from compared
