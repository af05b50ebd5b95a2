{#- Free text with email addresses and phone numbers replaced by [email] and [phone], so
    comments and call notes can reach analysts without the contact details people write in
    them. A phone number is nine or more digits with the usual separators (a date has eight).
    The patterns are privacy/identity.py's EMAIL_PATTERN and PHONE_PATTERN (a test keeps them
    equal and checks DuckDB, PostgreSQL and Python redact alike). -#}
{% macro redact_contact_details(column) -%}
    {#- Jinja keeps a backslash before a character it does not escape: the patterns arrive as
        written here. -#}
    {{ regexp_replace_all(
        regexp_replace_all(
            column,
            '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}',
            '[email]',
        ),
        '(\+|\()?[0-9](?:[ ().-]*[0-9]){8,}',
        '[phone]',
    ) }}
{%- endmacro %}
