{#- fct_member_daily, incrementally. Every row keeps inputs_hash: the XOR of the hashes of the
    fact rows it sums (each hashed with its key and the columns the day reads), so the XOR of a
    member's inputs_hash over their days equals the XOR of their fact rows' hashes. A run compares
    the two per member to find those whose facts changed in any way: a new, late or corrected
    row, a row re-linked from one member to another (both change), an erased or newly landed
    member. It deletes their days and writes them again; every other member's days stay. -#}

{#- The three facts' rows fct_member_daily reads, each with row_hash; restricted to the members
    in relation `members` when given. -#}
{% macro member_daily_fact_ctes(members=none) -%}
transactions as (
    select
        member_id,
        occurred_date,
        amount,
        purchase_channel,
        points_earned,
        points_redeemed,
        {{ hash_values([
            "'transaction'", 'transaction_id', 'occurred_date', 'amount', 'purchase_channel',
            'points_earned', 'points_redeemed',
        ]) }} as row_hash
    from {{ ref('fct_transactions') }}
    {%- if members %}
    where member_id in (select member_id from {{ members }})
    {%- endif %}
),

calls as (
    select
        member_id,
        started_date,
        is_unresolved,
        is_escalated,
        is_long_wait,
        is_repeat_contact,
        queue_seconds,
        is_negative_moment,
        is_positive_moment,
        {{ hash_values([
            "'call'", 'call_id', 'started_date', 'is_unresolved', 'is_escalated', 'is_long_wait',
            'is_repeat_contact', 'queue_seconds', 'is_negative_moment', 'is_positive_moment',
        ]) }} as row_hash
    from {{ ref('fct_calls') }}
    where
        member_id is not null
        {%- if members %}
        and member_id in (select member_id from {{ members }})
        {%- endif %}
),

survey_responses as (
    select
        member_id,
        submitted_date,
        is_negative_moment,
        is_positive_moment,
        {{ hash_values([
            "'survey_response'", 'response_id', 'submitted_date', 'is_negative_moment',
            'is_positive_moment',
        ]) }} as row_hash
    from {{ ref('fct_survey_responses') }}
    where
        member_id is not null
        {%- if members %}
        and member_id in (select member_id from {{ members }})
        {%- endif %}
)
{%- endmacro %}

{#- Pre-hook: creates temporary table member_daily_changed (the members whose facts' hash
    differs from the XOR of their stored days; a member on one side only counts as changed)
    and deletes their days. A table written before inputs_hash existed has every member
    changed. -#}
{% macro member_daily_remove_changed() -%}
    {%- if execute and is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- do run_query("drop table if exists member_daily_changed") -%}
        {%- set query -%}
            create temporary table member_daily_changed as
            with

            {{ member_daily_fact_ctes() }},

            fact_rows as (
                select member_id, row_hash from transactions
                union all
                select member_id, row_hash from calls
                union all
                select member_id, row_hash from survey_responses
            ),

            current_hashes as (
                select
                    fact_rows.member_id,
                    bit_xor(fact_rows.row_hash) as inputs_hash
                from fact_rows
                inner join {{ ref('dim_members') }} as members
                    on fact_rows.member_id = members.member_id
                group by fact_rows.member_id
            ),

            stored_hashes as (
                select
                    member_id,
                    {{ 'bit_xor(inputs_hash)' if 'inputs_hash' in columns else 'null' }}
                    as inputs_hash
                from {{ this }}
                group by member_id
            )

            select coalesce(current_hashes.member_id, stored_hashes.member_id) as member_id
            from current_hashes
            full outer join stored_hashes
                on current_hashes.member_id = stored_hashes.member_id
            where
                current_hashes.member_id is null
                or stored_hashes.member_id is null
                or current_hashes.inputs_hash is distinct from stored_hashes.inputs_hash
        {%- endset -%}
        {%- do run_query(query) -%}
        {%- set changed = run_query("select count(*) from member_daily_changed").columns[0].values()[0] -%}
        {%- do log('fct_member_daily: ' ~ changed ~ ' members changed', info=True) -%}
        {{ publish_log('select member_id from member_daily_changed', 'member_id') }}
        delete from {{ this }}
        where member_id in (select member_id from member_daily_changed)
    {%- elif execute -%}
        {{ publish_log() }}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: drops the pre-hook's temporary table. -#}
{% macro member_daily_drop_changed() -%}
    {%- if is_incremental() -%}
        drop table if exists member_daily_changed
    {%- endif -%}
{%- endmacro %}
