#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d/): one
# login role and one database per user of the server. Passwords come from the container's
# environment (docker/.env), never from this file.
set -euo pipefail

create() { # role database password
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$1" -v db="$2" -v pw="$3" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') \gexec
SQL
}

create airflow airflow "$AIRFLOW_DB_PASSWORD"
create cx cx "$CX_PG_PASSWORD"
create mlflow mlflow "$MLFLOW_DB_PASSWORD"

# The warehouse's access roles (dbt's on-run-end hook grants to them; `cx` cannot create roles):
# analysts read the marts, marketers the segment and export tables, the pipeline writes.
for kind in analyst marketer pipeline; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE ROLE cx_${kind} NOLOGIN"
done
