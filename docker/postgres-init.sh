#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d/): one
# login role and one database per user of the server. Passwords come from the Compose secrets
# mounted at /run/secrets (docker/secrets/ on the host), never from this file.
set -euo pipefail

create() { # role database password
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$1" -v db="$2" -v pw="$3" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') \gexec
SQL
}

secret() { # name: the secret's value; a missing or empty one stops the first start
    local value
    value="$(cat "/run/secrets/$1")"
    [[ -n "$value" ]] || { echo "postgres-init: secret $1 is empty" >&2; exit 1; }
    printf '%s' "$value"
}

# Assigned first: a failed substitution in an assignment stops the script (set -e).
airflow_password="$(secret airflow_db_password)"
cx_password="$(secret cx_pg_password)"
mlflow_password="$(secret mlflow_db_password)"
create airflow airflow "$airflow_password"
create cx cx "$cx_password"
create mlflow mlflow "$mlflow_password"

# The warehouse's access roles (dbt's on-run-end hook grants to them; `cx` cannot create roles):
# analysts read the marts, marketers the segment and export tables, the pipeline writes.
for kind in analyst marketer pipeline; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE ROLE cx_${kind} NOLOGIN"
done
