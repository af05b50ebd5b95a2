with

hashed_members as (
    {{ source_rows('enriched', 'member_hashes') }}
),

renamed as (
    select
        trim(member_id) as member_id,
        email_hash,
        phone_hash,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from hashed_members
    where member_id is not null
)

select * from renamed
