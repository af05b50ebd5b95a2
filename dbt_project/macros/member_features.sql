{#- The member features shared by customer_360 and member_features_pit, as CTEs ending in
    `member_features` (one row per member per cutoff date). `cutoffs` names a relation with one
    column, cutoff_date. Only data dated strictly before the cutoff is used (daily activity on
    days before it, survey responses submitted before it), so one definition serves both the
    current view and leak-free training rows. Windows count back from the cutoff: "30d" is the
    30 days before it.

    `with_inputs_hash` adds member_inputs_hash: a hash of every input row a member's features at
    the cutoff are computed from (their daily activity and survey responses before it, their
    enrolment and closure as of it, and their comments' and call notes' sentiment, topics and
    effort in the 90 days before it), so an incremental build can tell which rows changed.
    `members` names a relation whose member_id column limits the members computed.

    Days and responses dated on or after the latest cutoff are dropped before any join: they
    count for no cutoff, and an early cutoff then probes only the history before it. -#}
{% macro member_features_ctes(cutoffs, with_inputs_hash=false, members=none) -%}
members as (
    select
        member_id,
        enrolled_at,
        closed_at
    from {{ ref('dim_members') }}
    {%- if members %}
    where member_id in (select member_id from {{ members }})
    {%- endif %}
),

member_daily as (
    select
        daily.*
        {%- if with_inputs_hash %},
        {{ row_hash('daily') }} as input_row_hash
        {%- endif %}
    from {{ ref('fct_member_daily') }} as daily
    where daily.activity_date < (select max(cutoff_date) from {{ cutoffs }})
),

survey_responses as (
    select
        responses.*
        {%- if with_inputs_hash %},
        {{ row_hash('responses') }} as input_row_hash
        {%- endif %}
    from (
        select
            response_id,
            member_id,
            submitted_at,
            nps_score,
            csat_score,
            ces_score,
            engagement_index
        from {{ ref('fct_survey_responses') }}
        where
            member_id is not null
            and submitted_at < (select cast(max(cutoff_date) as timestamp) from {{ cutoffs }})
    ) as responses
),

text_mentions as (
    select
        texts.*
        {%- if with_inputs_hash %},
        {{ row_hash('texts') }} as input_row_hash
        {%- endif %}
    from (
        select
            text_source,
            record_id,
            member_id,
            written_date,
            sentiment_label,
            topics,
            effort_mentions
        from {{ ref('int_texts_scored') }}
        where
            member_id is not null
            and written_date < (select max(cutoff_date) from {{ cutoffs }})
    ) as texts
),

enrolled_members as (
    select
        members.member_id,
        {{ cutoffs }}.cutoff_date,
        {{ dbt.datediff('members.enrolled_at', cutoffs ~ '.cutoff_date', 'day') }} as tenure_days,
        coalesce(members.closed_at < cast({{ cutoffs }}.cutoff_date as timestamp), false)
        as is_closed
        {%- if with_inputs_hash %},
        members.enrolled_at,
        case
            when members.closed_at < cast({{ cutoffs }}.cutoff_date as timestamp)
                then members.closed_at
        end as closed_at
        {%- endif %}
    from members
    inner join {{ cutoffs }}
        on members.enrolled_at < cast({{ cutoffs }}.cutoff_date as timestamp)
),

activity_before_cutoff as (
    select
        enrolled_members.member_id,
        enrolled_members.cutoff_date,
        member_daily.activity_date,
        {{ dbt.datediff('member_daily.activity_date', 'enrolled_members.cutoff_date', 'day') }}
        as days_before_cutoff,
        member_daily.spend_amount,
        member_daily.transaction_count,
        member_daily.store_transaction_count,
        member_daily.online_transaction_count,
        member_daily.app_transaction_count,
        member_daily.points_earned,
        member_daily.points_redeemed,
        member_daily.call_count,
        member_daily.unresolved_call_count,
        member_daily.escalated_call_count,
        member_daily.repeat_contact_count,
        member_daily.queued_call_count,
        member_daily.queue_seconds_total,
        member_daily.negative_moment_count,
        member_daily.positive_moment_count
        {%- if with_inputs_hash %},
        member_daily.input_row_hash
        {%- endif %}
    from enrolled_members
    inner join member_daily
        on
            enrolled_members.member_id = member_daily.member_id
            and member_daily.activity_date < enrolled_members.cutoff_date
),

aggregated_activity as (
    select
        member_id,
        cutoff_date,
        max(case when transaction_count > 0 then activity_date end) as last_transaction_date,
        min(case when transaction_count > 0 then activity_date end) as first_transaction_date,
        count(case when transaction_count > 0 then activity_date end) as purchase_days,
        {%- for days in [30, 90, 365] %}
        sum(case when days_before_cutoff <= {{ days }} then transaction_count else 0 end)
        as transactions_{{ days }}d,
        sum(case when days_before_cutoff <= {{ days }} then spend_amount else 0 end)
        as spend_{{ days }}d,
        {%- endfor %}
        sum(case when days_before_cutoff between 31 and 60 then transaction_count else 0 end)
        as transactions_prev_30d,
        sum(case when days_before_cutoff between 31 and 60 then spend_amount else 0 end)
        as spend_prev_30d,
        sum(case when days_before_cutoff between 91 and 180 then spend_amount else 0 end)
        as spend_prev_90d,
        sum(case when days_before_cutoff <= 365 then store_transaction_count else 0 end)
        as store_transactions_365d,
        sum(case when days_before_cutoff <= 365 then online_transaction_count else 0 end)
        as online_transactions_365d,
        sum(case when days_before_cutoff <= 365 then app_transaction_count else 0 end)
        as app_transactions_365d,
        sum(points_earned) - sum(points_redeemed) as points_balance,
        {%- for days in [30, 90] %}
        sum(case when days_before_cutoff <= {{ days }} then negative_moment_count else 0 end)
        as negative_moments_{{ days }}d,
        sum(case when days_before_cutoff <= {{ days }} then positive_moment_count else 0 end)
        as positive_moments_{{ days }}d,
        {%- endfor %}
        sum(case when days_before_cutoff <= 90 then call_count else 0 end) as calls_90d,
        sum(case when days_before_cutoff <= 90 then unresolved_call_count else 0 end)
        as unresolved_calls_90d,
        sum(case when days_before_cutoff <= 90 then escalated_call_count else 0 end)
        as escalated_calls_90d,
        sum(case when days_before_cutoff <= 90 then repeat_contact_count else 0 end)
        as repeat_contacts_90d,
        sum(case when days_before_cutoff <= 90 then queued_call_count else 0 end)
        as queued_calls_90d,
        sum(case when days_before_cutoff <= 90 then queue_seconds_total else 0 end)
        as queue_seconds_90d
        {%- if with_inputs_hash %},
        bit_xor(input_row_hash) as inputs_hash
        {%- endif %}
    from activity_before_cutoff
    group by member_id, cutoff_date
),

responses_before_cutoff as (
    select
        enrolled_members.member_id,
        enrolled_members.cutoff_date,
        survey_responses.nps_score,
        survey_responses.csat_score,
        survey_responses.ces_score,
        survey_responses.engagement_index,
        {%- if with_inputs_hash %}
        survey_responses.input_row_hash,
        {%- endif %}
        {%- for measure in ['nps_score', 'csat_score', 'ces_score', 'engagement_index'] %}
        case
            when survey_responses.{{ measure }} is not null
                then row_number() over (
                    partition by
                        enrolled_members.member_id,
                        enrolled_members.cutoff_date,
                        survey_responses.{{ measure }} is null
                    order by survey_responses.submitted_at desc, survey_responses.response_id desc
                )
        end as {{ measure }}_recency_rank{{ "," if not loop.last }}
        {%- endfor %}
    from enrolled_members
    inner join survey_responses
        on
            enrolled_members.member_id = survey_responses.member_id
            and survey_responses.submitted_at < cast(enrolled_members.cutoff_date as timestamp)
),

{#- Only the window's texts join (and hash): features read 90 days of them. #}
texts_before_cutoff as (
    select
        enrolled_members.member_id,
        enrolled_members.cutoff_date,
        text_mentions.sentiment_label,
        text_mentions.topics,
        text_mentions.effort_mentions
        {%- if with_inputs_hash %},
        text_mentions.input_row_hash
        {%- endif %}
    from enrolled_members
    inner join text_mentions
        on
            enrolled_members.member_id = text_mentions.member_id
            and text_mentions.written_date < enrolled_members.cutoff_date
            and {{ dbt.datediff('text_mentions.written_date', 'enrolled_members.cutoff_date', 'day') }}
            <= 90
),

aggregated_texts as (
    select
        member_id,
        cutoff_date,
        {%- for topic in var('text_topics') %}
        sum(case when ',' || topics || ',' like '%,{{ topic }},%' then 1 else 0 end)
        as {{ topic }}_mentions_90d,
        {%- endfor %}
        sum(effort_mentions) as effort_mentions_90d,
        sum(case when sentiment_label = 'negative' then 1 else 0 end) as negative_texts_90d
        {%- if with_inputs_hash %},
        bit_xor(input_row_hash) as inputs_hash
        {%- endif %}
    from texts_before_cutoff
    group by member_id, cutoff_date
),

aggregated_responses as (
    select
        member_id,
        cutoff_date,
        count(*) as survey_responses_total,
        {%- if with_inputs_hash %}
        bit_xor(input_row_hash) as inputs_hash,
        {%- endif %}
        {%- for measure in ['nps_score', 'csat_score', 'ces_score', 'engagement_index'] %}
        max(case when {{ measure }}_recency_rank = 1 then {{ measure }} end)
        as latest_{{ measure }},
        max(case when {{ measure }}_recency_rank = 2 then {{ measure }} end)
        as previous_{{ measure }}{{ "," if not loop.last }}
        {%- endfor %}
    from responses_before_cutoff
    group by member_id, cutoff_date
),

member_features as (
    select
        enrolled_members.member_id,
        enrolled_members.cutoff_date,
        cast(enrolled_members.tenure_days as bigint) as tenure_days,
        enrolled_members.is_closed,
        cast(
            {{ dbt.datediff('aggregated_activity.last_transaction_date', 'enrolled_members.cutoff_date', 'day') }}
            as bigint
        ) as days_since_last_transaction,
        cast(
            {{ dbt.datediff('aggregated_activity.first_transaction_date', 'enrolled_members.cutoff_date', 'day') }}
            as bigint
        ) as days_since_first_transaction,
        cast(coalesce(aggregated_activity.purchase_days, 0) as bigint) as purchase_days_total,
        {%- for days in [30, 90, 365] %}
        cast(coalesce(aggregated_activity.transactions_{{ days }}d, 0) as bigint)
        as transactions_{{ days }}d,
        cast(coalesce(aggregated_activity.spend_{{ days }}d, 0) as numeric(18, 2))
        as spend_{{ days }}d,
        {%- endfor %}
        cast(
            coalesce(aggregated_activity.transactions_30d, 0)
            - coalesce(aggregated_activity.transactions_prev_30d, 0)
            as bigint
        ) as transactions_30d_change,
        cast(
            coalesce(aggregated_activity.spend_30d, 0)
            - coalesce(aggregated_activity.spend_prev_30d, 0)
            as numeric(18, 2)
        ) as spend_30d_change,
        cast(
            coalesce(aggregated_activity.spend_90d, 0)
            - coalesce(aggregated_activity.spend_prev_90d, 0)
            as numeric(18, 2)
        ) as spend_90d_change,
        cast(coalesce(aggregated_activity.points_balance, 0) as bigint) as points_balance,
        {%- for channel in ['store', 'online', 'app'] %}
        cast(
            case
                when aggregated_activity.transactions_365d > 0
                    then cast(aggregated_activity.{{ channel }}_transactions_365d as {{ type_double() }})
                    / aggregated_activity.transactions_365d
            end
            as {{ type_double() }}
        ) as {{ channel }}_share_365d,
        {%- endfor %}
        cast(coalesce(aggregated_responses.survey_responses_total, 0) as bigint)
        as survey_responses_total,
        {%- for measure in ['nps_score', 'csat_score', 'ces_score'] %}
        cast(aggregated_responses.latest_{{ measure }} as bigint) as latest_{{ measure }},
        cast(
            aggregated_responses.latest_{{ measure }} - aggregated_responses.previous_{{ measure }}
            as bigint
        ) as {{ measure }}_change,
        {%- endfor %}
        cast(aggregated_responses.latest_engagement_index as {{ type_double() }})
        as latest_engagement_index,
        cast(
            aggregated_responses.latest_engagement_index
            - aggregated_responses.previous_engagement_index
            as {{ type_double() }}
        ) as engagement_index_change,
        {%- for days in [30, 90] %}
        cast(coalesce(aggregated_activity.negative_moments_{{ days }}d, 0) as bigint)
        as negative_moments_{{ days }}d,
        cast(coalesce(aggregated_activity.positive_moments_{{ days }}d, 0) as bigint)
        as positive_moments_{{ days }}d,
        {%- endfor %}
        cast(coalesce(aggregated_activity.calls_90d, 0) as bigint) as calls_90d,
        cast(coalesce(aggregated_activity.unresolved_calls_90d, 0) as bigint)
        as unresolved_calls_90d,
        cast(coalesce(aggregated_activity.escalated_calls_90d, 0) as bigint)
        as escalated_calls_90d,
        cast(coalesce(aggregated_activity.repeat_contacts_90d, 0) as bigint)
        as repeat_contacts_90d,
        cast(
            case
                when aggregated_activity.queued_calls_90d > 0
                    then cast(aggregated_activity.queue_seconds_90d as {{ type_double() }})
                    / aggregated_activity.queued_calls_90d
            end
            as {{ type_double() }}
        ) as avg_queue_seconds_90d,
        {%- for topic in var('text_topics') %}
        cast(coalesce(aggregated_texts.{{ topic }}_mentions_90d, 0) as bigint)
        as {{ topic }}_mentions_90d,
        {%- endfor %}
        cast(coalesce(aggregated_texts.effort_mentions_90d, 0) as bigint) as effort_mentions_90d,
        cast(coalesce(aggregated_texts.negative_texts_90d, 0) as bigint) as negative_texts_90d,
        -- Effort read from words stands in for CES only where the member never answered CES.
        case
            when aggregated_responses.latest_ces_score is null
                then coalesce(aggregated_texts.effort_mentions_90d, 0) > 0
        end as is_effort_from_words_90d
        {%- if with_inputs_hash %},
        {{ hash_values([
            'enrolled_members.enrolled_at',
            'enrolled_members.closed_at',
            'aggregated_activity.inputs_hash',
            'aggregated_responses.inputs_hash',
            'aggregated_texts.inputs_hash',
        ]) }} as member_inputs_hash
        {%- endif %}
    from enrolled_members
    left join aggregated_activity
        on
            enrolled_members.member_id = aggregated_activity.member_id
            and enrolled_members.cutoff_date = aggregated_activity.cutoff_date
    left join aggregated_responses
        on
            enrolled_members.member_id = aggregated_responses.member_id
            and enrolled_members.cutoff_date = aggregated_responses.cutoff_date
    left join aggregated_texts
        on
            enrolled_members.member_id = aggregated_texts.member_id
            and enrolled_members.cutoff_date = aggregated_texts.cutoff_date
)
{%- endmacro %}

{#- The cutoff dates of member_features_pit: var `pit_cutoff_dates` when set; else, when the
    data spans fewer than var `pit_weekly_below_days` days, every Monday after the first activity
    date up to the day after the last one (a short history has too few months to train on);
    else the first day of every month in that range. -#}
{% macro pit_cutoff_dates() -%}
    {%- set chosen = var('pit_cutoff_dates') -%}
    {%- if chosen -%}
        {{ return(chosen | list) }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return(['2000-01-01']) }}
    {%- endif -%}
    {%- set bounds = run_query(
        "select min(activity_date), max(activity_date) from " ~ ref('fct_member_daily')
    ) -%}
    {%- set first_date = bounds.columns[0].values()[0] -%}
    {%- set last_date = bounds.columns[1].values()[0] -%}
    {%- if first_date is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set cutoffs = [] -%}
    {%- set span_days = (last_date - first_date).days + 1 -%}
    {%- if span_days < var('pit_weekly_below_days') | int -%}
        {%- set first_monday = first_date + modules.datetime.timedelta(days=7 - first_date.weekday()) -%}
        {%- for offset in range(0, span_days + 1, 7) -%}
            {%- set cutoff = first_monday + modules.datetime.timedelta(days=offset) -%}
            {%- if cutoff <= last_date + modules.datetime.timedelta(days=1) -%}
                {%- do cutoffs.append(cutoff.strftime('%Y-%m-%d')) -%}
            {%- endif -%}
        {%- endfor -%}
        {{ return(cutoffs) }}
    {%- endif -%}
    {%- set year = first_date.year -%}
    {%- set month = first_date.month -%}
    {%- set last_month = last_date.year * 12 + last_date.month - 1 + (1 if last_date.month != (last_date + modules.datetime.timedelta(days=1)).month else 0) -%}
    {%- for index in range(year * 12 + month, last_month + 1) -%}
        {%- do cutoffs.append('%04d-%02d-01' % (index // 12, index % 12 + 1)) -%}
    {%- endfor -%}
    {{ return(cutoffs) }}
{%- endmacro %}

{#- A 64-bit hash of a whole row, given its relation's alias. -#}
{% macro row_hash(alias) -%}
    {{ return(adapter.dispatch('row_hash')(alias)) }}
{%- endmacro %}

{% macro default__row_hash(alias) -%}
    hash({{ alias }})
{%- endmacro %}

{% macro postgres__row_hash(alias) -%}
    hashtextextended(cast({{ alias }} as text), 0)
{%- endmacro %}

{#- A bigint hash of a list of SQL expressions, nulls included. -#}
{% macro hash_values(expressions) -%}
    {{ return(adapter.dispatch('hash_values')(expressions)) }}
{%- endmacro %}

{% macro default__hash_values(expressions) -%}
    {#- DuckDB's hash is an unsigned 64-bit value; shifted, it fits a bigint. -#}
    cast(hash({{ expressions | join(', ') }}) >> 1 as bigint)
{%- endmacro %}

{% macro postgres__hash_values(expressions) -%}
    hashtextextended(
        concat_ws('|'{%- for expression in expressions %}, coalesce(cast({{ expression }} as text), '~'){%- endfor %}),
        0
    )
{%- endmacro %}

{#- The hash of the feature SQL, stored with every row as inputs_fingerprint: a changed
    definition rewrites every cutoff. The database's name (DuckDB's is the file's) is left out,
    so a warehouse file that is copied or renamed keeps its rows. -#}
{% macro pit_definition_hash() -%}
    {%- set sql = member_features_ctes('cutoffs', with_inputs_hash=true) | string -%}
    {%- set database = this.database if this is not none and this.database else '' -%}
    {{ return(local_md5(sql.replace('"' ~ database ~ '".', ''))) }}
{%- endmacro %}

{#- {cutoff_date: stored definition hash} of the cutoffs member_features_pit holds; empty when
    the table lacks member_inputs_hash (built before rows carried it: every cutoff is rewritten
    once). -#}
{% macro pit_stored_cutoffs() -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- set stored = {} -%}
    {%- if 'member_inputs_hash' in columns and 'inputs_fingerprint' in columns -%}
        {%- set result = run_query(
            "select cast(cutoff_date as " ~ dbt.type_string() ~ "), min(inputs_fingerprint) from "
            ~ this ~ " group by cutoff_date"
        ) -%}
        {%- for row in result.rows -%}
            {%- do stored.update({row[0]: row[1]}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(stored) }}
{%- endmacro %}

{#- The wanted cutoffs member_features_pit must write whole, in date order: all of them when
    `compare` is false (a first build or full refresh), else those the table lacks or holds
    from another feature definition. -#}
{% macro pit_missing_cutoffs(definition_hash, compare) -%}
    {%- set wanted = pit_cutoff_dates() | sort -%}
    {%- if not compare -%}
        {{ return(wanted) }}
    {%- endif -%}
    {%- set stored = pit_stored_cutoffs() -%}
    {%- set missing = [] -%}
    {%- for cutoff_date in wanted -%}
        {%- if stored.get(cutoff_date) != definition_hash -%}
            {%- do missing.append(cutoff_date) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(missing) }}
{%- endmacro %}

{#- `cutoff_dates` in batches of about var('pit_batch_rows') member-cutoff rows each (at least one
    cutoff per batch), so no statement aggregates more groups than memory holds. `members` is
    how many members each cutoff computes (default: every member). -#}
{% macro pit_batches(cutoff_dates, members=none) -%}
    {%- if not cutoff_dates -%}
        {{ return([]) }}
    {%- endif -%}
    {%- if members is none -%}
        {%- set members = run_query("select count(*) from " ~ ref('dim_members')).columns[0].values()[0] if execute else 1 -%}
    {%- endif -%}
    {%- set batch_rows = var('pit_batch_rows') | string -%}
    {%- if not batch_rows.isdigit() or batch_rows | int < 1 -%}
        {{ exceptions.raise_compiler_error(
            "var pit_batch_rows must be a whole number of rows above 0, got '" ~ batch_rows ~ "'"
        ) }}
    {%- endif -%}
    {%- set size = [1, (batch_rows | int) // ([members | int, 1] | max)] | max -%}
    {%- set batches = [] -%}
    {%- for start in range(0, cutoff_dates | length, size) -%}
        {%- do batches.append(cutoff_dates[start:start + size]) -%}
    {%- endfor -%}
    {%- if execute -%}
    {%- do log('member_features_pit: writing ' ~ cutoff_dates | length ~ ' cutoffs for ' ~ members ~ ' members in ' ~ batches | length ~ ' batches', info=True) -%}
    {%- endif -%}
    {{ return(batches) }}
{%- endmacro %}

{#- The rows of member_features_pit for `cutoff_dates` (of the members in relation `members`, or
    all), each with the definition hash. The markers around the cutoff list let the benchmark's
    ceiling run the same SQL batch by batch. -#}
{% macro pit_select(cutoff_dates, definition_hash, members=none) -%}
with

cutoffs as (
    -- pit cutoffs: begin
    {%- for cutoff_date in cutoff_dates %}
    select
        cast('{{ cutoff_date }}' as date) as cutoff_date,
        cast('{{ definition_hash }}' as {{ dbt.type_string() }}) as inputs_fingerprint
    {{ "union all" if not loop.last }}
    {%- else %}
    select
        cast(null as date) as cutoff_date,
        cast(null as {{ dbt.type_string() }}) as inputs_fingerprint
    where 1 = 0
    {%- endfor %}
    -- pit cutoffs: end
),

{{ member_features_ctes('cutoffs', with_inputs_hash=true, members=members) }},

keyed as (
    select
        member_features.member_id || ':' || cast(member_features.cutoff_date as {{ dbt.type_string() }})
        as member_cutoff_id,
        member_features.*,
        cutoffs.inputs_fingerprint
    from member_features
    inner join cutoffs
        on member_features.cutoff_date = cutoffs.cutoff_date
)

select * from keyed
{%- endmacro %}

{#- post-hook of member_features_pit: every batch of whole cutoffs still missing after the
    model's own statement wrote the first, one delete and insert per batch. -#}
{% macro pit_write_remaining_batches() -%}
    {%- if execute and model.resource_type == 'model' -%}
        {%- set definition = pit_definition_hash() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- for batch in pit_batches(pit_missing_cutoffs(definition, true)) %}
        delete from {{ this }} where cutoff_date in ({{ date_literals(batch) }});
        insert into {{ this }} ({{ columns | join(', ') }})
        select {{ columns | join(', ') }}
        from (
            {{ pit_select(batch, definition) }}
        ) as batch_rows;
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- pre-hook of member_features_pit, on an incremental run:
    - rows of cutoffs no longer wanted (var pit_cutoff_dates changed) leave the table;
    - in the cutoffs kept (wanted and written by the current definition), only the rows of
      members whose inputs changed are rewritten. A member's inputs before any kept cutoff are a
      subset of those before the latest, so comparing member_inputs_hash at the latest kept cutoff
      finds every changed member (new, erased, or with a late or corrected row anywhere in their
      history) in one pass. Their rows are recomputed at every kept cutoff, and only those whose
      hash differs replace the stored ones; the others, and every other member's, stay. -#}
{% macro pit_refresh_kept_cutoffs() -%}
    {%- if execute and is_incremental() -%}
        {%- set wanted = pit_cutoff_dates() -%}
        {%- set definition = pit_definition_hash() -%}
        {%- set missing = pit_missing_cutoffs(definition, true) -%}
        {%- set kept = wanted | sort | reject('in', missing) | list -%}
        {%- set changed = pit_changed_members(kept[-1]) if kept else 0 -%}
        {#- For the analysts' copy: the cutoffs dropped or written whole, the members rewritten. -#}
        {%- set rewritten_cutoffs -%}
            select distinct cutoff_date from {{ this }}
            {%- if wanted %}
            where cutoff_date not in ({{ date_literals(wanted) }})
            {%- endif %}
            {%- if missing %}
            union all
            select unnest([{{ date_literals(missing) }}]) as cutoff_date
            {%- endif %}
        {%- endset %}
        {{ publish_log(rewritten_cutoffs, 'cutoff_date') }}
        {%- if changed %}
        {{ publish_log('select member_id from pit_changed_members', 'member_id') }}
        {%- endif %}
        delete from {{ this }}
        {%- if wanted %}
        where cutoff_date not in ({{ date_literals(wanted) }})
        {%- endif %};
        {%- if changed %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- for batch in pit_batches(kept, members=changed) %}
        drop table if exists pit_fresh_rows;
        create temporary table pit_fresh_rows as
        {{ pit_select(batch, definition, members='pit_changed_members') }};
        delete from {{ this }}
        where
            cutoff_date in ({{ date_literals(batch) }})
            and member_id in (select member_id from pit_changed_members)
            and member_cutoff_id not in (
                select fresh.member_cutoff_id
                from pit_fresh_rows as fresh
                inner join {{ this }} as stored
                    on
                        fresh.member_cutoff_id = stored.member_cutoff_id
                        and fresh.member_inputs_hash = stored.member_inputs_hash
            );
        insert into {{ this }} ({{ columns | join(', ') }})
        select {{ columns | join(', ') }}
        from pit_fresh_rows
        where member_cutoff_id not in (
            select member_cutoff_id from {{ this }}
            where
                cutoff_date in ({{ date_literals(batch) }})
                and member_id in (select member_id from pit_changed_members)
        );
        drop table pit_fresh_rows;
        {%- endfor %}
        {%- endif %}
        {%- if kept %}
        drop table pit_changed_members;
        {%- endif %}
    {%- elif execute -%}
        {{ publish_log() }}
    {%- endif -%}
{%- endmacro %}

{#- Creates temporary table pit_changed_members: the members whose member_inputs_hash at
    `cutoff_date` differs between the inputs now and the stored row (a member on one side only
    counts as changed). Returns how many there are. -#}
{% macro pit_changed_members(cutoff_date) -%}
    {%- do run_query("drop table if exists pit_changed_members") -%}
    {%- set query -%}
        create temporary table pit_changed_members as
        with

        cutoffs as (
            select cast('{{ cutoff_date }}' as date) as cutoff_date
        ),

        {{ member_features_ctes('cutoffs', with_inputs_hash=true) }},

        stored as (
            select member_id, member_inputs_hash
            from {{ this }}
            where cutoff_date = cast('{{ cutoff_date }}' as date)
        )

        select coalesce(member_features.member_id, stored.member_id) as member_id
        from member_features
        full outer join stored
            on member_features.member_id = stored.member_id
        where member_features.member_inputs_hash is distinct from stored.member_inputs_hash
    {%- endset -%}
    {%- do run_query(query) -%}
    {%- set changed = run_query("select count(*) from pit_changed_members").columns[0].values()[0] -%}
    {%- do log('member_features_pit: ' ~ changed ~ ' members changed before ' ~ cutoff_date, info=True) -%}
    {{ return(changed | int) }}
{%- endmacro %}

{#- `dates` (YYYY-MM-DD strings) as a comma-separated list of SQL date literals. -#}
{% macro date_literals(dates) -%}
    {%- for day in dates %}cast('{{ day }}' as date){{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}
