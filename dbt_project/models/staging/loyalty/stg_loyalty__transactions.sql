-- One row per landed version of a transaction (a transaction appears again in every partition
-- that carries a change). fct_transactions keeps the latest, and on an incremental run
-- deduplicates only the transactions whose lake files are new.
with

landed_transactions as (
    {{ source_rows('loyalty', 'transactions') }}
),

renamed as (
    {{ loyalty_transaction_versions('landed_transactions') }}
)

select * from renamed
