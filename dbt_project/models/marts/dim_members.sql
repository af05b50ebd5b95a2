with

members as (
    select * from {{ ref('stg_loyalty__members') }}
),

described as (
    select
        member_id,
        enrolled_at,
        cast(enrolled_at as date) as enrolled_date,
        cast(extract(year from birth_date) as bigint) as birth_year,
        region,
        tier,
        marketing_opt_in,
        closed_at,
        updated_at,
        closed_at is not null as is_closed
    from members
)

select * from described
