{#- One row per value of `field` in `to` that `column_name` of the model lacks: the reverse of
    `relationships`, for a model that should hold every member of a dimension but may leave
    some out by definition (customer_360, the members enrolled after its as-of date). At
    severity warn it counts and names them in every build rather than fail it. `show` lists
    columns of `to` to print beside each missing value. -#}
{% test cx_missing_from(model, column_name, to, field, show=[]) %}

with

expected as (
    select
        {{ field }} as missing_value
        {%- for column in show %},
        {{ column }}
        {%- endfor %}
    from {{ to }}
    where {{ field }} is not null
),

present as (
    select distinct {{ column_name }} as present_value
    from {{ model }}
),

missing as (
    select expected.*
    from expected
    left join present
        on expected.missing_value = present.present_value
    where present.present_value is null
)

select * from missing

{% endtest %}
