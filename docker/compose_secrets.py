"""The deployment's secrets: files under docker/secrets/ on the host, Compose secrets in the
containers (mounted at /run/secrets/<name>), never a value in compose.yaml or its environment.

On the host, once, before the first ``docker compose up``::

    python3 docker/compose_secrets.py init      # writes every missing file, never overwrites

In the containers (the image has this file at /opt/cx/docker/compose_secrets.py):

    render TEMPLATE     print TEMPLATE with each ``{name}`` replaced by the secret ``name``: the
                        command of Airflow's ``AIRFLOW__<SECTION>__<KEY>_CMD`` options, e.g.
                        ``render postgresql+psycopg2://airflow:{airflow_db_password}@postgres/airflow``
    exec COMMAND...     set ``NAME`` from each ``NAME_FROM_SECRETS=<template>`` variable, then run
                        COMMAND: for programs that read only their environment (dbt's
                        ``env_var()``, the project's settings, MLflow)

A secret that is missing or empty stops the container with its name, rather than starting it
with an empty password; ``{name?}`` marks an optional one, which renders empty. Standard library
only: it also runs on the host, before any install.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from pathlib import Path

SECRETS_DIR = Path(os.environ.get("CX_SECRETS_DIR") or "/run/secrets")
HOST_DIR = Path(__file__).resolve().parent / "secrets"
SUFFIX = "_FROM_SECRETS"
_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)(\??)\}")


def _token() -> str:
    # URL-safe characters only: the value goes into connection URLs unescaped.
    return secrets.token_urlsafe(32)


# Every secret of docker/compose.yaml, and how `init` makes one.
SECRETS = {
    "postgres_password": _token,  # the PostgreSQL superuser
    "airflow_db_password": _token,  # role `airflow`: metadata and Celery results
    "cx_pg_password": _token,  # role `cx`: the dbt warehouse
    "mlflow_db_password": _token,  # role `mlflow`: runs and registry
    "redis_password": _token,  # the Celery broker
    "minio_root_user": lambda: f"cx-{secrets.token_hex(6)}",
    "minio_root_password": _token,
    "airflow_admin_password": _token,  # the UI and REST API login
    # Fernet's key format: 32 random bytes, URL-safe base64.
    "airflow_fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "airflow_api_secret_key": _token,
    "airflow_jwt_secret": _token,
    "cx_hash_key": _token,  # keys the hashes of the erasure suppression list: keep it stable
    "mlflow_admin_password": _token,  # MLflow's basic-auth admin, also the pipeline's login
    "mlflow_flask_secret_key": _token,  # signs MLflow's UI forms (shared by its workers)
    # Optional (``init`` writes it empty): the loyalty database's URL when it holds a password;
    # empty, the sample (or CX_LOYALTY_URL's value from docker/.env, for a URL without one).
    "cx_loyalty_url": None,
}


class SecretError(RuntimeError):
    """A secret is missing or empty; the message names it."""


def read_secret(name: str, directory: Path | None = None) -> str:
    path = (directory or SECRETS_DIR) / name
    try:
        value = path.read_text().strip()
    except OSError:
        value = ""
    if not value:
        raise SecretError(
            f"secret {name!r} is missing or empty ({path}): "
            "run `python3 docker/compose_secrets.py init` on the host"
        )
    return value


def render(template: str, directory: Path | None = None) -> str:
    def value(match: re.Match) -> str:
        try:
            return read_secret(match[1], directory)
        except SecretError:
            if match[2]:  # optional
                return ""
            raise

    return _PLACEHOLDER.sub(value, template)


def environment(env: dict[str, str], directory: Path | None = None) -> dict[str, str]:
    """``env`` with each ``NAME_FROM_SECRETS`` replaced by ``NAME``, its template rendered; an
    optional secret that renders empty leaves ``NAME`` as it was."""
    out = {key: value for key, value in env.items() if not key.endswith(SUFFIX)}
    for key, template in env.items():
        if key.endswith(SUFFIX):
            rendered = render(template, directory)
            if rendered:
                out[key.removesuffix(SUFFIX)] = rendered
    return out


def init(directory: Path = HOST_DIR) -> list[str]:
    """Write each missing secret file; return the names written. The folder is the owner's
    alone; the files are readable by the containers' users (airflow 50000, postgres 999, ...),
    which the folder's mode keeps out for everyone else on the host."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    written = []
    for name, make in SECRETS.items():
        path = directory / name
        if path.exists() and (make is None or path.read_text().strip()):
            continue
        path.write_text(make() + "\n" if make else "")
        path.chmod(0o644)
        written.append(name)
    return written


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "init" and not args:
            written = init()
            print(f"wrote {', '.join(written)}" if written else "every secret exists already")
            return 0
        if command == "render" and len(args) == 1:
            print(render(args[0]), end="")
            return 0
        if command == "exec" and args:
            os.execvpe(args[0], args, environment(dict(os.environ)))
    except SecretError as error:
        print(f"compose_secrets: {error}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
