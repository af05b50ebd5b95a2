{#- A 64-bit float column type: `double precision` in SQL's words (PostgreSQL, DuckDB), `double`
    in Spark's, which does not parse the former. dbt.type_float() will not do: on DuckDB it is
    `float`, a 32-bit REAL. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}
