with

survey_responses as (
    select * from {{ ref('fct_survey_responses') }}
),

members as (
    select
        member_id,
        region,
        tier
    from {{ ref('dim_members') }}
),

described as (
    select
        cast({{ dbt.date_trunc('month', 'survey_responses.submitted_date') }} as date)
            as response_month,
        survey_responses.nps_category,
        survey_responses.is_csat_top_two_box,
        coalesce(members.region, 'unknown') as region,
        coalesce(members.tier, 'unknown') as tier,
        coalesce(survey_responses.response_channel, 'unknown') as response_channel
    from survey_responses
    left join members
        on survey_responses.member_id = members.member_id
),

aggregated as (
    select
        response_month,
        region,
        tier,
        response_channel,
        count(*) as response_count,
        count(nps_category) as nps_response_count,
        sum(case when nps_category = 'promoter' then 1 else 0 end) as promoter_count,
        sum(case when nps_category = 'detractor' then 1 else 0 end) as detractor_count,
        count(is_csat_top_two_box) as csat_response_count,
        sum(case when is_csat_top_two_box then 1 else 0 end) as csat_top_two_box_count
    from described
    group by response_month, region, tier, response_channel
),

scored as (
    select
        response_month,
        region,
        tier,
        response_channel,
        cast(response_count as bigint) as response_count,
        cast(nps_response_count as bigint) as nps_response_count,
        cast(promoter_count as bigint) as promoter_count,
        cast(detractor_count as bigint) as detractor_count,
        cast(
            case
                when nps_response_count > 0
                    then 100.0 * (promoter_count - detractor_count) / nps_response_count
            end
            as {{ type_double() }}
        ) as nps,
        cast(csat_response_count as bigint) as csat_response_count,
        cast(
            case
                when csat_response_count > 0
                    then 1.0 * csat_top_two_box_count / csat_response_count
            end
            as {{ type_double() }}
        ) as csat_top_two_box_share
    from aggregated
)

select * from scored
