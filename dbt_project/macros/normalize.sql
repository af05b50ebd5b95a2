{#- Phone numbers to E.164 (as privacy/identity.py's normalize_phone): keep the digits; a
    leading + or 00 keeps the country code; ten digits get the default country code (+1, NANP);
    eleven digits starting with that code get a +. Anything else is not a usable number and
    becomes null. -#}
{% macro normalize_phone(column, default_country_code='1') -%}
    case
        when {{ column }} is null then null
        when trim({{ column }}) like '+%'
            and length({{ regexp_replace_all(column, '[^0-9]', '') }}) between 8 and 15
            then '+' || {{ regexp_replace_all(column, '[^0-9]', '') }}
        when trim({{ column }}) like '00%'
            and length({{ regexp_replace_all(column, '[^0-9]', '') }}) between 10 and 17
            then '+' || substr({{ regexp_replace_all(column, '[^0-9]', '') }}, 3)
        when length({{ regexp_replace_all(column, '[^0-9]', '') }}) = 10
            then '+{{ default_country_code }}' || {{ regexp_replace_all(column, '[^0-9]', '') }}
        when length({{ regexp_replace_all(column, '[^0-9]', '') }}) = 11
            and {{ regexp_replace_all(column, '[^0-9]', '') }} like '{{ default_country_code }}%'
            then '+' || {{ regexp_replace_all(column, '[^0-9]', '') }}
    end
{%- endmacro %}

{#- Emails compare trimmed and lower-case; a value without an @ (empty, "n/a") is no email.
    privacy/identity.py normalises alike before hashing (tests/privacy/test_keyed_matching.py
    runs both on the same values). -#}
{% macro normalize_email(column) -%}
    case when {{ column }} like '%@%' then lower(trim({{ column }})) end
{%- endmacro %}

{#- Text codes (tier, channel, reason) compare trimmed and lower-case. -#}
{% macro normalize_code(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- Landed timestamps are UTC instants (timestamptz); the warehouse stores them as UTC wall-clock
    timestamps so date arithmetic does not depend on the session time zone. -#}
{% macro to_utc(column) -%}
    {{ return(adapter.dispatch('to_utc')(column)) }}
{%- endmacro %}

{% macro default__to_utc(column) -%}
    cast(({{ column }} at time zone 'UTC') as timestamp)
{%- endmacro %}
