"""The warehouse: comment enrichment, the PostgreSQL raw loader, dbt runs and publishing."""
