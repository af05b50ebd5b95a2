{{
    config(
        materialized='incremental',
        unique_key='transaction_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

transactions as (
    select * from {{ ref('stg_loyalty__transactions') }}
),

shaped as (
    select
        transaction_id,
        member_id,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        recorded_at,
        amount,
        purchase_channel,
        store_id,
        points_earned,
        points_redeemed,
        source_interval_end_at,
        amount < 0 as is_return
    from transactions
),

filtered as (
    select * from shaped
    {% if is_incremental() -%}
        where {{ incremental_rows_filter('shaped', 'transaction_id') }}
    {%- endif %}
)

select * from filtered
