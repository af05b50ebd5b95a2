with

hashed_responses as (
    {{ source_rows('enriched', 'response_hashes') }}
),

renamed as (
    select
        trim(response_id) as response_id,
        email_hash as respondent_email_hash,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from hashed_responses
    where response_id is not null
)

select * from renamed
