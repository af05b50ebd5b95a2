with

members as (
    select * from {{ ref('stg_loyalty__members') }}
),

contacts as (
    select
        member_id,
        first_name,
        email,
        phone_e164,
        marketing_opt_in
    from members
)

select * from contacts
