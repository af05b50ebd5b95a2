{#- Rows an incremental fact must (re)write: rows landed within `lookback_days` of the newest
    landing already in the table (late rows and new versions), rows whose key the table lacks
    (a backfilled old interval), and rows whose derived columns changed (a member landed later
    links an old survey; a late call makes an earlier one a repeat). Together they make a chain
    of incremental runs give the same table as a full refresh. -#}
{% macro incremental_rows_filter(relation, key, compared_columns) -%}
    {{ relation }}.source_interval_end_at >= (
        select
            coalesce(
                {{ dbt.dateadd('day', -var('lookback_days'), 'max(source_interval_end_at)') }},
                cast('1900-01-01' as timestamp)
            )
        from {{ this }}
    )
    or {{ relation }}.{{ key }} in (
        select candidate_rows.{{ key }}
        from {{ relation }} as candidate_rows
        left join {{ this }} as existing_rows
            on candidate_rows.{{ key }} = existing_rows.{{ key }}
        where
            existing_rows.{{ key }} is null
            {%- for column in compared_columns %}
            or candidate_rows.{{ column }} is distinct from existing_rows.{{ column }}
            {%- endfor %}
    )
{%- endmacro %}
