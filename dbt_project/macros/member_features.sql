{#- The member features shared by customer_360 and member_features_pit, as CTEs ending in
    `member_features` (one row per member per cutoff date). `cutoffs` names a relation with one
    column, cutoff_date. Only data dated strictly before the cutoff is used (daily activity on
    days before it, survey responses submitted before it), so one definition serves both the
    current view and leak-free training rows. Windows count back from the cutoff: "30d" is the
    30 days before it. -#}
{% macro member_features_ctes(cutoffs) -%}
members as (
    select
        member_id,
        enrolled_at,
        closed_at
    from {{ ref('dim_members') }}
),

member_daily as (
    select * from {{ ref('fct_member_daily') }}
),

survey_responses as (
    select
        response_id,
        member_id,
        submitted_at,
        nps_score,
        csat_score,
        ces_score,
        engagement_index
    from {{ ref('fct_survey_responses') }}
    where member_id is not null
),

enrolled_members as (
    select
        members.member_id,
        {{ cutoffs }}.cutoff_date,
        {{ dbt.datediff('members.enrolled_at', cutoffs ~ '.cutoff_date', 'day') }} as tenure_days,
        coalesce(members.closed_at < cast({{ cutoffs }}.cutoff_date as timestamp), false)
        as is_closed
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

aggregated_responses as (
    select
        member_id,
        cutoff_date,
        count(*) as survey_responses_total,
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
                    then cast(aggregated_activity.{{ channel }}_transactions_365d as double precision)
                    / aggregated_activity.transactions_365d
            end
            as double precision
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
        cast(aggregated_responses.latest_engagement_index as double precision)
        as latest_engagement_index,
        cast(
            aggregated_responses.latest_engagement_index
            - aggregated_responses.previous_engagement_index
            as double precision
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
                    then cast(aggregated_activity.queue_seconds_90d as double precision)
                    / aggregated_activity.queued_calls_90d
            end
            as double precision
        ) as avg_queue_seconds_90d
    from enrolled_members
    left join aggregated_activity
        on
            enrolled_members.member_id = aggregated_activity.member_id
            and enrolled_members.cutoff_date = aggregated_activity.cutoff_date
    left join aggregated_responses
        on
            enrolled_members.member_id = aggregated_responses.member_id
            and enrolled_members.cutoff_date = aggregated_responses.cutoff_date
)
{%- endmacro %}

{#- The cutoff dates of member_features_pit: var `pit_cutoff_dates` when set, else the first day
    of every month after the first activity date up to the day after the last one. -#}
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
    {%- set year = first_date.year -%}
    {%- set month = first_date.month -%}
    {%- set last_month = last_date.year * 12 + last_date.month - 1 + (1 if last_date.month != (last_date + modules.datetime.timedelta(days=1)).month else 0) -%}
    {%- for index in range(year * 12 + month, last_month + 1) -%}
        {%- do cutoffs.append('%04d-%02d-01' % (index // 12, index % 12 + 1)) -%}
    {%- endfor -%}
    {{ return(cutoffs) }}
{%- endmacro %}

{#- A fingerprint per cutoff date of everything its member_features_pit rows are computed from:
    the rows of fct_member_daily dated before it, the members' survey responses submitted before
    it, the enrolments and closures before it, and `definition_hash` (the feature SQL). Rows are
    hashed whole and combined with an order-free XOR per day, then over the days before each
    cutoff; the count of rows is kept beside the XOR. Returns {cutoff: fingerprint}. -#}
{% macro pit_input_fingerprints(cutoff_dates, definition_hash) -%}
    {%- if not execute or not cutoff_dates -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set query -%}
        with

        cutoffs as (
            {%- for cutoff_date in cutoff_dates %}
            select cast('{{ cutoff_date }}' as date) as cutoff_date
            {{ "union all" if not loop.last }}
            {%- endfor %}
        ),

        responses as (
            select response_id, member_id, submitted_at, nps_score, csat_score, ces_score,
                engagement_index
            from {{ ref('fct_survey_responses') }}
            where member_id is not null
        ),

        enrolments as (
            select member_id, enrolled_at from {{ ref('dim_members') }}
        ),

        closures as (
            select member_id, closed_at from {{ ref('dim_members') }} where closed_at is not null
        ),

        hashed_rows as (
            select activity_date as day_date, {{ row_hash('member_daily') }} as row_hash
            from {{ ref('fct_member_daily') }} as member_daily
            union all
            select cast(submitted_at as date), {{ row_hash('responses') }} from responses
            union all
            select cast(enrolled_at as date), {{ row_hash('enrolments') }} from enrolments
            union all
            select cast(closed_at as date), {{ row_hash('closures') }} from closures
        ),

        days as (
            select day_date, bit_xor(row_hash) as day_hash, count(*) as day_rows
            from hashed_rows
            group by day_date
        )

        select
            cast(cutoffs.cutoff_date as {{ dbt.type_string() }}),
            cast(coalesce(bit_xor(days.day_hash), 0) as {{ dbt.type_string() }}),
            cast(coalesce(sum(days.day_rows), 0) as {{ dbt.type_string() }})
        from cutoffs
        left join days on days.day_date < cutoffs.cutoff_date
        group by cutoffs.cutoff_date
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {%- set fingerprints = {} -%}
    {%- for row in result.rows -%}
        {%- do fingerprints.update({row[0]: definition_hash ~ ':' ~ row[1] ~ ':' ~ row[2]}) -%}
    {%- endfor -%}
    {{ return(fingerprints) }}
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

{#- The cutoffs of `fingerprints` that member_features_pit must (re)write, in date order: all of
    them when `compare` is false (a first build or full refresh), else those the table lacks or
    stored with another fingerprint. -#}
{% macro pit_stale_cutoffs(fingerprints, compare) -%}
    {%- set wanted = fingerprints.keys() | sort -%}
    {%- if not compare -%}
        {{ return(wanted) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- if 'inputs_fingerprint' not in columns -%}
        {{ return(wanted) }}
    {%- endif -%}
    {%- set stored = {} -%}
    {%- set result = run_query(
        "select cast(cutoff_date as " ~ dbt.type_string() ~ "), min(inputs_fingerprint) from "
        ~ this ~ " group by cutoff_date"
    ) -%}
    {%- for row in result.rows -%}
        {%- do stored.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- set stale = [] -%}
    {%- for cutoff_date in wanted -%}
        {%- if stored.get(cutoff_date) != fingerprints[cutoff_date] -%}
            {%- do stale.append(cutoff_date) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(stale) }}
{%- endmacro %}

{#- The hash of the feature SQL, part of every fingerprint: a changed definition rewrites all. -#}
{% macro pit_definition_hash() -%}
    {{ return(local_md5(member_features_ctes('cutoffs'))) }}
{%- endmacro %}

{#- `cutoff_dates` in batches of about var('pit_batch_rows') member-cutoff rows each (at least one
    cutoff per batch), so no statement aggregates more groups than memory holds. -#}
{% macro pit_batches(cutoff_dates) -%}
    {%- if not cutoff_dates -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set members = run_query("select count(*) from " ~ ref('dim_members')).columns[0].values()[0] if execute else 1 -%}
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
    {%- do log('member_features_pit: writing ' ~ cutoff_dates | length ~ ' cutoffs in ' ~ batches | length ~ ' batches', info=True) -%}
    {{ return(batches) }}
{%- endmacro %}

{#- The rows of member_features_pit for `cutoff_dates`, each with its fingerprint. The markers
    around the cutoff list let the benchmark's ceiling run the same SQL batch by batch. -#}
{% macro pit_select(cutoff_dates, fingerprints) -%}
with

cutoffs as (
    -- pit cutoffs: begin
    {%- for cutoff_date in cutoff_dates %}
    select
        cast('{{ cutoff_date }}' as date) as cutoff_date,
        cast('{{ fingerprints[cutoff_date] }}' as {{ dbt.type_string() }}) as inputs_fingerprint
    {{ "union all" if not loop.last }}
    {%- else %}
    select
        cast(null as date) as cutoff_date,
        cast(null as {{ dbt.type_string() }}) as inputs_fingerprint
    where 1 = 0
    {%- endfor %}
    -- pit cutoffs: end
),

{{ member_features_ctes('cutoffs') }},

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

{#- post-hook of member_features_pit: every batch of cutoffs still stale after the model's own
    statement wrote the first, one delete and insert per batch. -#}
{% macro pit_write_remaining_batches() -%}
    {%- if execute and model.resource_type == 'model' -%}
        {%- set fingerprints = pit_input_fingerprints(pit_cutoff_dates(), pit_definition_hash()) -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- for batch in pit_batches(pit_stale_cutoffs(fingerprints, true)) %}
        delete from {{ this }} where cutoff_date in ({{ date_literals(batch) }});
        insert into {{ this }} ({{ columns | join(', ') }})
        select {{ columns | join(', ') }}
        from (
            {{ pit_select(batch, fingerprints) }}
        ) as batch_rows;
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- pre-hook of member_features_pit: rows of cutoffs no longer wanted (var pit_cutoff_dates
    changed) leave the table. -#}
{% macro pit_delete_retired_cutoffs() -%}
    {%- if is_incremental() -%}
        {%- set wanted = pit_cutoff_dates() -%}
        delete from {{ this }}
        {%- if wanted %}
        where cutoff_date not in ({{ date_literals(wanted) }})
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- `dates` (YYYY-MM-DD strings) as a comma-separated list of SQL date literals. -#}
{% macro date_literals(dates) -%}
    {%- for day in dates %}cast('{{ day }}' as date){{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}
