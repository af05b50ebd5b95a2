-- One row per member per cutoff date (the first day of each month in the data range, or var
-- pit_cutoff_dates) for every member enrolled before the cutoff; features use only data dated
-- strictly before the cutoff, so a training row never sees its own future.
--
-- Incremental: every row carries the hash of the feature SQL (inputs_fingerprint) and a hash of
-- the member's inputs before its cutoff (member_inputs_hash: their daily activity and survey
-- responses, their enrolment and closure). A run writes whole only the cutoffs that are new or
-- were written by another definition; in the others, the pre-hook rewrites only the rows of
-- members whose inputs changed (a late row, a backfilled interval, a member who appears with
-- years of history, an erasure). An ordinary day's data is dated after every cutoff and
-- rewrites nothing; a new month adds one cutoff.
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
        pre_hook="{{ pit_refresh_kept_cutoffs() }}",
        post_hook="{{ pit_write_remaining_batches() }}",
    )
}}
{%- set definition = pit_definition_hash() %}
{%- set batches = pit_batches(pit_missing_cutoffs(definition, is_incremental())) %}

{{ pit_select(batches[0] if batches else [], definition) }}
