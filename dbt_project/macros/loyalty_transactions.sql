{#- The staging shape of landed transaction rows (`landed`, a relation of raw rows): one row per
    landed version, typed and cleaned. The staging view applies it to every landed row;
    fct_transactions, on an incremental run, to the raw rows of the day's transactions only, so
    the clean-up (time zones, codes) runs on those rows and not on the whole history. -#}
{% macro loyalty_transaction_versions(landed) -%}
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
    from {{ landed }}
    where transaction_id is not null
{%- endmacro %}
