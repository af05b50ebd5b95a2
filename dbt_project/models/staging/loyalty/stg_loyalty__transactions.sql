with

landed_transactions as (
    {{ source_rows('loyalty', 'transactions') }}
),

renamed as (
    select
        trim(transaction_id) as transaction_id,
        trim(member_id) as member_id,
        {{ to_utc('occurred_at') }} as occurred_at,
        {{ to_utc('recorded_at') }} as recorded_at,
        cast(amount as numeric(18, 2)) as amount,
        {{ normalize_code('channel') }} as purchase_channel,
        nullif(trim(store_id), '') as store_id,
        cast(points_earned as bigint) as points_earned,
        cast(points_redeemed as bigint) as points_redeemed,
        _source_file as source_file,
        _source_row as source_row,
        {{ to_utc('_interval_end') }} as source_interval_end_at
    from landed_transactions
    where transaction_id is not null
),

deduplicated as (
    {{ dedupe(
        'renamed',
        'transaction_id',
        [
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
            "coalesce(source_row, 0)",
        ],
    ) }}
)

select * from deduplicated
