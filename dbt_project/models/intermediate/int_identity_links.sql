-- Survey responses and calls linked to members: by a member_id that names a known member, else
-- by email (surveys) or phone (calls) when exactly one member has it. A key shared by several
-- members links nobody ("ambiguous"); the record keeps a null member_id.
-- Emails and phones are compared as keyed hashes (HMAC under CX_HASH_KEY, computed in Python
-- before dbt by warehouse/identity_hashes.py), never as plain values. Each record takes the
-- hashes of the very landed row staging kept: joined on its key and lineage (members counted
-- once: a hash is ambiguous only when its smallest and largest member id differ).
with

members as (
    select
        member_id,
        source_interval_end_at,
        source_file,
        source_row
    from {{ ref('stg_loyalty__members') }}
),

member_hashes as (
    select
        member_id,
        source_interval_end_at,
        source_file,
        source_row,
        email_hash,
        phone_hash
    from {{ ref('stg_enriched__member_hashes') }}
),

survey_responses as (
    select
        response_id,
        member_id,
        source_interval_end_at,
        source_file,
        source_row
    from {{ ref('stg_surveys__responses') }}
),

response_hashes as (
    select
        response_id,
        source_interval_end_at,
        source_file,
        source_row,
        respondent_email_hash
    from {{ ref('stg_enriched__response_hashes') }}
),

calls as (
    select
        call_id,
        member_id,
        source_interval_end_at,
        source_file,
        source_row
    from {{ ref('stg_calls__contacts') }}
),

call_hashes as (
    select
        call_id,
        source_interval_end_at,
        source_file,
        source_row,
        caller_phone_hash
    from {{ ref('stg_enriched__call_hashes') }}
),

hashed_members as (
    select
        members.member_id,
        member_hashes.email_hash,
        member_hashes.phone_hash
    from members
    left join member_hashes
        on
            members.member_id = member_hashes.member_id
            and members.source_interval_end_at = member_hashes.source_interval_end_at
            and members.source_file = member_hashes.source_file
            and members.source_row = member_hashes.source_row
),

hashed_survey_responses as (
    select
        survey_responses.response_id,
        survey_responses.member_id,
        response_hashes.respondent_email_hash
    from survey_responses
    left join response_hashes
        on
            survey_responses.response_id = response_hashes.response_id
            and survey_responses.source_interval_end_at = response_hashes.source_interval_end_at
            and survey_responses.source_file = response_hashes.source_file
            and survey_responses.source_row = response_hashes.source_row
),

hashed_calls as (
    select
        calls.call_id,
        calls.member_id,
        call_hashes.caller_phone_hash
    from calls
    left join call_hashes
        on
            calls.call_id = call_hashes.call_id
            and calls.source_interval_end_at = call_hashes.source_interval_end_at
            and calls.source_file = call_hashes.source_file
            and calls.source_row = call_hashes.source_row
),

counted_emails as (
    select
        email_hash,
        min(member_id) as member_id,
        min(member_id) = max(member_id) as is_one_member
    from hashed_members
    where email_hash is not null
    group by email_hash
),

counted_phones as (
    select
        phone_hash,
        min(member_id) as member_id,
        min(member_id) = max(member_id) as is_one_member
    from hashed_members
    where phone_hash is not null
    group by phone_hash
),

linked_survey_responses as (
    select
        'survey_response' as record_type,
        hashed_survey_responses.response_id as record_id,
        case
            when known_members.member_id is not null then known_members.member_id
            when counted_emails.is_one_member then counted_emails.member_id
        end as member_id,
        case
            when known_members.member_id is not null then 'member_id'
            when counted_emails.is_one_member then 'email'
            when not counted_emails.is_one_member then 'ambiguous'
            else 'unmatched'
        end as link_method
    from hashed_survey_responses
    left join members as known_members
        on hashed_survey_responses.member_id = known_members.member_id
    left join counted_emails
        on hashed_survey_responses.respondent_email_hash = counted_emails.email_hash
),

linked_calls as (
    select
        'call' as record_type,
        hashed_calls.call_id as record_id,
        case
            when known_members.member_id is not null then known_members.member_id
            when counted_phones.is_one_member then counted_phones.member_id
        end as member_id,
        case
            when known_members.member_id is not null then 'member_id'
            when counted_phones.is_one_member then 'phone'
            when not counted_phones.is_one_member then 'ambiguous'
            else 'unmatched'
        end as link_method
    from hashed_calls
    left join members as known_members
        on hashed_calls.member_id = known_members.member_id
    left join counted_phones
        on hashed_calls.caller_phone_hash = counted_phones.phone_hash
),

unioned as (
    select * from linked_survey_responses
    union all
    select * from linked_calls
),

keyed as (
    select
        record_type,
        record_id,
        member_id,
        link_method,
        record_type || ':' || record_id as identity_link_id,
        member_id is not null as is_linked
    from unioned
)

select * from keyed
