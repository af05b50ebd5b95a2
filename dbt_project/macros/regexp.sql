{#- Every match of `pattern` (a regular expression, given without quotes) in `text` replaced by
    `replacement`. PostgreSQL and DuckDB replace the first match unless told 'g'; Spark replaces
    every match and reads backslashes in a string literal as escapes unless it is a raw one. -#}
{% macro regexp_replace_all(text, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all')(text, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, r'{{ pattern }}', '{{ replacement }}')
{%- endmacro %}
