-- One row per transaction: its latest landed version (latest landing, then source file and row).
--
-- Incremental: a run reads again only the transactions that appear in lake files new or
-- rewritten since the last run (macros/lake_files.sql keeps the ledger of files read): it picks
-- their raw rows out of every landed file, shapes them as the staging view does
-- (loyalty_transaction_versions), deduplicates them and writes the rows the table does not hold
-- exactly. A day cleans and deduplicates that day's transactions, not the whole history.
-- depends_on: {{ source('loyalty', 'transactions') }}
{{
    config(
        materialized='incremental',
        unique_key='transaction_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{{ lake_files_list('loyalty', 'transactions', 'stg_loyalty__transactions') }}",
            "{{ lake_files_publish_log('loyalty', 'transactions', 'transaction_id') }}",
        ],
        post_hook="{{ lake_files_record('loyalty', 'transactions') }}",
    )
}}
{%- set changed_keys = lake_files_changed_keys('loyalty', 'transactions', 'trim(transaction_id)') %}

with

{% if changed_keys -%}
changed_keys as (
    {{ changed_keys }}
),

landed_transactions as (
    {{ source_rows('loyalty', 'transactions') }}
),

changed_landed_transactions as (
    select * from landed_transactions
    where trim(transaction_id) in (select changed_key from changed_keys)
),

versions as (
    {{ loyalty_transaction_versions('changed_landed_transactions') }}
),
{%- else -%}
versions as (
    select * from {{ ref('stg_loyalty__transactions') }}
),
{%- endif %}

deduplicated as (
    {{ dedupe(
        'versions',
        'transaction_id',
        [
            "coalesce(source_interval_end_at, cast('1900-01-01' as timestamp))",
            "coalesce(source_file, '')",
            "coalesce(source_row, 0)",
        ],
    ) }}
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
    from deduplicated
),

filtered as (
    select * from shaped
    {% if is_incremental() -%}
        where {{ incremental_rows_filter('shaped', 'transaction_id') }}
    {%- endif %}
)

select * from filtered
