"""docker/compose.yaml, checked without Docker: the Compose Specification's JSON schema (vendored
in compose-spec.json), the services the deployment needs, and the secrets it must not hold."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from compose_file import (
    COMPOSE_FILE,
    DOCKER_DIR,
    ENV_EXAMPLE,
    MissingVariables,
    filled_env,
    interpolate,
    load_compose,
    read_env_file,
    variables,
)

SCHEMA = Path(__file__).with_name("compose-spec.json")
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")


def _validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(document) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator().iter_errors(document)
    ]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(filled_env())


def test_the_compose_file_matches_the_compose_spec_schema(compose):
    assert _errors(load_compose()) == []
    assert _errors(compose) == []


def test_the_schema_check_catches_a_broken_file():
    broken = load_compose(filled_env())
    broken["services"]["redis"]["restart"] = ["always"]
    broken["services"]["postgres"]["healthcheck"]["interval"] = {"seconds": 10}
    broken["services"]["airflow-worker"]["no_such_key"] = True
    wrong = {error.split("/")[1].split(":")[0] for error in _errors(broken)}
    assert wrong == {"redis", "postgres", "airflow-worker"}


def test_every_service_of_the_deployment_is_named(compose):
    services = compose["services"]
    assert {"postgres", "redis", "minio", "mlflow", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert " ".join(services[name]["command"]) == command, name
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
        assert services[name]["image"] == services["mlflow"]["image"]  # one project image
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_mlflow_stores_runs_in_postgres_and_artifacts_in_minio(compose):
    mlflow = compose["services"]["mlflow"]
    args = mlflow["command"]
    assert mlflow["entrypoint"] == ["mlflow"] and args[0] == "server"
    assert args[args.index("--artifacts-destination") + 1].startswith("s3://")
    assert "--serve-artifacts" in args
    env = mlflow["environment"]
    assert urlsplit(env["MLFLOW_BACKEND_STORE_URI"]).scheme.startswith("postgresql")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    worker = compose["services"]["airflow-worker"]["environment"]
    assert worker["CX_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # Only the tracking server holds the object store's credentials.
    assert not any(key.startswith("AWS_") for key in worker)


def test_the_warehouse_target_is_postgres_with_the_names_dbt_reads(compose):
    from warehouse.dbt_runner import POSTGRES_DEFAULTS

    env = compose["services"]["airflow-worker"]["environment"]
    assert env["CX_WAREHOUSE_TARGET"] == "postgres"
    assert set(POSTGRES_DEFAULTS) <= set(env)
    assert env["CX_PG_HOST"] == "postgres"
    init = (DOCKER_DIR / "postgres-init.sh").read_text()
    assert f"create {env['CX_PG_USER']} {env['CX_PG_DBNAME']} " in init
    for url in (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        compose["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"],
    ):
        parts = urlsplit(url)
        assert f"create {parts.username} {parts.path.lstrip('/')} " in init, url
    result = subprocess.run(["bash", "-n", str(DOCKER_DIR / "postgres-init.sh")], check=False)
    assert result.returncode == 0


def test_compose_refuses_to_start_until_every_secret_is_set():
    example = read_env_file(ENV_EXAMPLE)
    required = {n for n, ops in variables(COMPOSE_FILE.read_text()).items() if ":?" in ops}
    with pytest.raises(MissingVariables) as refused:
        load_compose(example)
    assert refused.value.names == required
    assert {n for n in example if SECRET_NAME.search(n)} <= required
    # Filling them in is all it takes.
    load_compose(filled_env())


def test_no_secret_has_a_default_or_a_value_in_the_repository():
    text = COMPOSE_FILE.read_text()
    used = variables(text)
    example = read_env_file(ENV_EXAMPLE)
    secrets = {name for name in used if SECRET_NAME.search(name)}
    assert secrets, "the compose file uses no secret variable at all?"
    for name in secrets:
        assert used[name] == {":?"}, f"{name} must be required (${{{name}:?...}}), never defaulted"
        assert example.get(name, None) == "", f"{name} must be an empty placeholder in .env.example"
    # Every variable the file uses is documented in .env.example.
    assert set(used) - {"HOSTNAME"} <= set(example) | _container_side(text)
    # No literal credential in a URL: user:password@ only through a required variable.
    for password in re.findall(r"://[^/\s:@]*:([^@\s]+)@", text):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", password), password


def _container_side(text: str) -> set[str]:
    """Variables escaped with $$ are expanded inside the container, not by Compose."""
    return set(re.findall(r"\$\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


def test_published_ports_listen_on_loopback_by_default(compose):
    published = [
        (name, port)
        for name, service in compose["services"].items()
        for port in service.get("ports", [])
    ]
    assert {name for name, _ in published} >= {"airflow-apiserver", "mlflow"}
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
    assert not {"postgres", "redis"} & {name for name, _ in published}


def test_every_airflow_setting_is_a_real_option(compose):
    from airflow.configuration import conf

    conf.load_providers_configuration()
    description = conf.configuration_description
    env = compose["services"]["airflow-worker"]["environment"]
    third_party = {"cosmos"}  # astronomer-cosmos reads its own section
    for key in (k for k in env if k.startswith("AIRFLOW__")):
        _, section, option = key.split("__", 2)
        section, option = section.lower(), option.lower()
        if section in third_party:
            continue
        assert option in description.get(section, {}).get("options", {}), key


def test_the_executor_and_auth_manager_classes_exist(compose):
    import importlib

    env = compose["services"]["airflow-apiserver"]["environment"]
    for path in (
        env["AIRFLOW__CORE__AUTH_MANAGER"],
        "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    ):
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_interpolation_follows_compose_rules():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$HOME", env) == "x d  d $HOME"
    assert interpolate("${SET:+alt}${EMPTY:+alt}", env) == "alt"
    with pytest.raises(MissingVariables) as refused:
        interpolate(["${EMPTY:?e}", "${UNSET?e}", "${EMPTY?fine}"], env)
    assert refused.value.names == {"EMPTY", "UNSET"}
