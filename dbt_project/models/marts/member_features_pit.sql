-- One row per member per cutoff date (the first day of each month in the data range, or var
-- pit_cutoff_dates) for every member enrolled before the cutoff; features use only data dated
-- strictly before the cutoff, so a training row never sees its own future.
--
-- Incremental by cutoff: a cutoff's rows depend only on the inputs dated before it (daily
-- activity, survey responses, enrolments and closures) and on the feature definitions, so each
-- cutoff carries a fingerprint of exactly those, and a run rewrites only the cutoffs that are
-- new or whose fingerprint changed (a late row, a backfilled interval, a new definition). An
-- ordinary day's data is dated after every cutoff and rewrites nothing; a new month adds one.
--
-- In batches: computing every cutoff in one statement aggregates members x cutoffs groups at
-- once (24 million at a million members, far past memory, and it spilled 70 GB to disk). This
-- statement writes the first batch of cutoffs (var pit_batch_rows member-cutoffs each) and the
-- post-hook writes the rest, one statement per batch, in the same transaction.
{{
    config(
        materialized='incremental',
        unique_key='cutoff_date',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ pit_delete_retired_cutoffs() }}",
        post_hook="{{ pit_write_remaining_batches() }}",
    )
}}
{%- set fingerprints = pit_input_fingerprints(pit_cutoff_dates(), pit_definition_hash()) %}
{%- set batches = pit_batches(pit_stale_cutoffs(fingerprints, is_incremental())) %}

{{ pit_select(batches[0] if batches else [], fingerprints) }}
