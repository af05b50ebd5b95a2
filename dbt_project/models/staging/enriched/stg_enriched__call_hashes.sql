with

hashed_calls as (
    {{ source_rows('enriched', 'call_hashes') }}
),

renamed as (
    select
        trim(call_id) as call_id,
        caller_phone_hash,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from hashed_calls
    where call_id is not null
)

select * from renamed
