-- One row per month, text source (survey comment or call note) and topic: how often customers
-- and agents wrote about it, and with what sentiment. A text with several topics counts once in
-- each; a text with none counts under topic 'none'.
with

texts as (
    select * from {{ ref('int_texts_scored') }}
),

topics as (
    {%- for topic in var('text_topics') %}
        select cast('{{ topic }}' as {{ dbt.type_string() }}) as topic
        union all
    {%- endfor %}
    select cast('none' as {{ dbt.type_string() }}) as topic
),

mentions as (
    select
        cast({{ dbt.date_trunc('month', 'texts.written_date') }} as date) as topic_month,
        texts.text_source,
        topics.topic,
        texts.member_id,
        texts.sentiment,
        texts.sentiment_label,
        texts.effort_mentions
    from texts
    inner join topics
        on
            ',' || texts.topics || ',' like '%,' || topics.topic || ',%'
            or (texts.topics = '' and topics.topic = 'none')
),

aggregated as (
    select
        topic_month,
        text_source,
        topic,
        cast(count(*) as bigint) as mentions,
        cast(sum(case when sentiment_label = 'negative' then 1 else 0 end) as bigint)
            as negative_mentions,
        cast(sum(case when sentiment_label = 'neutral' then 1 else 0 end) as bigint)
            as neutral_mentions,
        cast(sum(case when sentiment_label = 'positive' then 1 else 0 end) as bigint)
            as positive_mentions,
        cast(
            sum(case when sentiment_label = 'negative' then 1 else 0 end) * 1.0 / count(*)
            as {{ type_double() }}
        ) as negative_share,
        cast(avg(sentiment) as {{ type_double() }}) as avg_sentiment,
        cast(sum(case when effort_mentions > 0 then 1 else 0 end) as bigint)
            as effort_mentions,
        cast(count(distinct member_id) as bigint) as members
    from mentions
    group by topic_month, text_source, topic
)

select * from aggregated
