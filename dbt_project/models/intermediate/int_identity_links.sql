-- Survey responses and calls linked to members: by a member_id that names a known member, else
-- by normalised email (surveys) or E.164 phone (calls) when exactly one member has it. A key
-- shared by several members links nobody ("ambiguous"); the record keeps a null member_id.
with

members as (
    select
        member_id,
        email,
        phone_e164
    from {{ ref('stg_loyalty__members') }}
),

survey_responses as (
    select
        response_id,
        member_id,
        respondent_email
    from {{ ref('stg_surveys__responses') }}
),

calls as (
    select
        call_id,
        member_id,
        caller_phone_e164
    from {{ ref('stg_calls__contacts') }}
),

counted_emails as (
    select
        email,
        min(member_id) as member_id,
        count(*) as member_count
    from members
    where email is not null
    group by email
),

counted_phones as (
    select
        phone_e164,
        min(member_id) as member_id,
        count(*) as member_count
    from members
    where phone_e164 is not null
    group by phone_e164
),

linked_survey_responses as (
    select
        'survey_response' as record_type,
        survey_responses.response_id as record_id,
        case
            when known_members.member_id is not null then known_members.member_id
            when counted_emails.member_count = 1 then counted_emails.member_id
        end as member_id,
        case
            when known_members.member_id is not null then 'member_id'
            when counted_emails.member_count = 1 then 'email'
            when counted_emails.member_count > 1 then 'ambiguous'
            else 'unmatched'
        end as link_method
    from survey_responses
    left join members as known_members
        on survey_responses.member_id = known_members.member_id
    left join counted_emails
        on survey_responses.respondent_email = counted_emails.email
),

linked_calls as (
    select
        'call' as record_type,
        calls.call_id as record_id,
        case
            when known_members.member_id is not null then known_members.member_id
            when counted_phones.member_count = 1 then counted_phones.member_id
        end as member_id,
        case
            when known_members.member_id is not null then 'member_id'
            when counted_phones.member_count = 1 then 'phone'
            when counted_phones.member_count > 1 then 'ambiguous'
            else 'unmatched'
        end as link_method
    from calls
    left join members as known_members
        on calls.member_id = known_members.member_id
    left join counted_phones
        on calls.caller_phone_e164 = counted_phones.phone_e164
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
