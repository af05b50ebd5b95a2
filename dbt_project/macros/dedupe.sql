{#- Keep one row per key: the row that sorts last by `order_by` (a list of expressions, all
    compared descending, which must not be null; coalesce them first). On DuckDB an arg_max over
    the whole row does it in one aggregation; PostgreSQL uses `distinct on`. -#}
{% macro dedupe(relation, partition_by, order_by) -%}
    {{ return(adapter.dispatch('dedupe')(relation, partition_by, order_by)) }}
{%- endmacro %}

{% macro duckdb__dedupe(relation, partition_by, order_by) -%}
    select unnest(latest_rows.latest_row)
    from (
        select
            arg_max(
                candidate_rows,
                struct_pack(
                    {%- for expression in order_by %}
                    sort_key_{{ loop.index }} := {{ expression }}{{ "," if not loop.last }}
                    {%- endfor %}
                )
            ) as latest_row
        from {{ relation }} as candidate_rows
        group by candidate_rows.{{ partition_by }}
    ) as latest_rows
{%- endmacro %}

{% macro default__dedupe(relation, partition_by, order_by) -%}
    select distinct on ({{ partition_by }}) *
    from {{ relation }}
    order by
        {{ partition_by }},
        {%- for expression in order_by %}
        {{ expression }} desc{{ "," if not loop.last }}
        {%- endfor %}
{%- endmacro %}
