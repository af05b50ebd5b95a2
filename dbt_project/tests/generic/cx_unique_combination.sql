{#- Fails for every combination of `columns` that occurs more than once (the grain of a model
    keyed by several columns). -#}
{% test cx_unique_combination(model, columns) %}

with

grouped as (
    select
        {{ columns | join(', ') }},
        count(*) as row_count
    from {{ model }}
    group by {{ columns | join(', ') }}
),

duplicated as (
    select * from grouped
    where row_count > 1
)

select * from duplicated

{% endtest %}
