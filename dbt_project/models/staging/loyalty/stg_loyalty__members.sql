with

landed_members as (
    {{ source_rows('loyalty', 'members') }}
),

renamed as (
    select
        trim(member_id) as member_id,
        {{ to_utc('enrolled_at') }} as enrolled_at,
        {{ to_utc('updated_at') }} as updated_at,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone_e164,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        birth_date,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(region), '') as region,
        {{ normalize_code('tier') }} as tier,
        coalesce(marketing_opt_in, false) as marketing_opt_in,
        {{ to_utc('closed_at') }} as closed_at,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from landed_members
    where member_id is not null
),

deduplicated as (
    {{ dedupe(
        'renamed',
        'member_id',
        [
            "coalesce(updated_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
            "coalesce(source_row, 0)",
        ],
    ) }}
)

select * from deduplicated
