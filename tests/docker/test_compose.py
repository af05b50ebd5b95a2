"""docker/compose.yaml, checked without Docker: the Compose Specification's JSON schema (vendored
in compose-spec.json), the services the deployment needs, and the secrets it must not hold: they
are Compose secrets, read in the containers by docker/compose_secrets.py (tested here too)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from compose_file import (
    COMPOSE_FILE,
    DOCKER_DIR,
    ENV_EXAMPLE,
    MissingVariables,
    compose_secrets_module,
    container_env,
    fake_secrets,
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
# Variables whose value would hold a secret: a password, a key, a URL with credentials in it.
SECRET_VALUED = re.compile(
    r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|_KEY_ID$|SQL_ALCHEMY_CONN|BROKER_URL|RESULT_BACKEND"
    r"|STORE_URI|ROOT_USER|HASH_KEY"
)
# How a variable may name a secret instead of holding it.
BY_REFERENCE = ("_CMD", "_FROM_SECRETS", "_FILE")
SHARED_LAKE = DOCKER_DIR / "compose.shared-lake.yaml"


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


@pytest.fixture(scope="module")
def run_secrets(tmp_path_factory) -> Path:
    return fake_secrets(tmp_path_factory.mktemp("run-secrets"))


def _env(compose, service: str, run_secrets: Path) -> dict[str, str]:
    return container_env(compose["services"][service]["environment"], run_secrets)


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


def test_every_service_of_the_deployment_is_named(compose, run_secrets):
    services = compose["services"]
    assert {"postgres", "redis", "minio", "mlflow", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert " ".join(services[name]["command"]) == command, name
        env = _env(compose, name, run_secrets)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
        assert services[name]["image"] == services["mlflow"]["image"]  # one project image
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_mlflow_stores_runs_in_postgres_and_artifacts_in_minio(compose, run_secrets):
    mlflow = compose["services"]["mlflow"]
    args = mlflow["command"]
    assert mlflow["entrypoint"][-1] == "mlflow" and args[0] == "server"
    assert args[args.index("--artifacts-destination") + 1].startswith("s3://")
    assert "--serve-artifacts" in args
    env = _env(compose, "mlflow", run_secrets)
    store = urlsplit(env["MLFLOW_BACKEND_STORE_URI"])
    assert store.scheme.startswith("postgresql")
    assert store.password == "secret-mlflow_db_password"
    assert env["AWS_SECRET_ACCESS_KEY"] == "secret-minio_root_password"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    worker = compose["services"]["airflow-worker"]["environment"]
    assert worker["CX_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # Only the tracking server holds the object store's credentials.
    assert not any(key.startswith("AWS_") for key in worker)


def test_the_warehouse_target_is_postgres_with_the_names_dbt_reads(compose, run_secrets):
    from warehouse.dbt_runner import POSTGRES_DEFAULTS

    env = _env(compose, "airflow-worker", run_secrets)
    assert env["CX_WAREHOUSE_TARGET"] == "postgres"
    assert set(POSTGRES_DEFAULTS) <= set(env)
    assert env["CX_PG_HOST"] == "postgres"
    assert env["CX_PG_PASSWORD"] == "secret-cx_pg_password"
    init = (DOCKER_DIR / "postgres-init.sh").read_text()
    # Each role gets the password its users read: the same secret on both sides.
    roles = dict(re.findall(r'(\w+)_password="\$\(secret (\w+)\)"', init))
    assert roles == {
        "airflow": "airflow_db_password",
        "cx": "cx_pg_password",
        "mlflow": "mlflow_db_password",
    }
    assert f"create {env['CX_PG_USER']} {env['CX_PG_DBNAME']} " in init
    for url in (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        _env(compose, "mlflow", run_secrets)["MLFLOW_BACKEND_STORE_URI"],
    ):
        parts = urlsplit(url)
        assert f"create {parts.username} {parts.path.lstrip('/')} " in init, url
        assert parts.password == f"secret-{roles[parts.username]}", url
    result = subprocess.run(["bash", "-n", str(DOCKER_DIR / "postgres-init.sh")], check=False)
    assert result.returncode == 0


def _secret_references(service: dict) -> set[str]:
    """The secrets a service's configuration reads: ``{name}`` templates, /run/secrets/<name>
    paths, and MinIO's ``*_FILE: <name>``."""
    keys = ("environment", "entrypoint", "command", "healthcheck")
    text = json.dumps({k: service.get(k) for k in keys})
    found = set(re.findall(r"\{([a-z0-9_]+)\??\}", text))
    found |= set(re.findall(r"/run/secrets/([a-z0-9_]+)", text))
    for key, value in (service.get("environment") or {}).items():
        if key.endswith("_FILE") and "/" not in str(value):
            found.add(str(value))
    return found


def test_every_secret_is_a_compose_secret_granted_where_it_is_read(compose):
    declared = compose["secrets"]
    names = set(compose_secrets_module().SECRETS)
    assert set(declared) == names  # `compose_secrets.py init` writes every one
    for name, secret in declared.items():
        assert secret == {"file": f"./secrets/{name}"}, name
    for service_name, service in compose["services"].items():
        read = _secret_references(service)
        granted = set(service.get("secrets", []))
        assert read <= granted, f"{service_name} reads {sorted(read - granted)} ungranted"
        assert granted <= read | {"postgres_password", "airflow_db_password", "cx_pg_password",
                                  "mlflow_db_password"}, service_name  # fmt: skip
    # The roles' passwords are read by postgres-init.sh, mounted into the postgres service.
    assert set(compose["services"]["postgres"]["secrets"]) >= {
        "airflow_db_password",
        "cx_pg_password",
        "mlflow_db_password",
    }


def test_no_secret_is_a_plain_environment_value(compose):
    for service_name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_VALUED.search(key.removesuffix("_FROM_SECRETS")) and not key.endswith(
                BY_REFERENCE
            ):
                raise AssertionError(f"{service_name}: {key} holds a secret as a plain value")
            # No URL with a literal password: only a {secret} placeholder.
            for password in re.findall(r"://[^/\s:@]*:([^@\s]+)@", str(value)):
                assert re.fullmatch(r"\{[a-z0-9_]+\}", password), f"{service_name}: {key}"
    text = COMPOSE_FILE.read_text()
    used = variables(text)
    # Compose interpolates no secret at all, and .env (settings only) has none to give it.
    assert not {name for name in used if SECRET_VALUED.search(name)}
    example = read_env_file(ENV_EXAMPLE)
    assert not {name for name in example if SECRET_NAME.search(name)}
    # Every variable the file uses is documented in .env.example.
    assert set(used) - {"HOSTNAME"} <= set(example) | _container_side(text)


def test_airflow_reads_its_secrets_through_options_that_take_a_command(compose):
    """Airflow honours ``*_CMD`` for sensitive options only; for any other it is ignored."""
    from airflow.configuration import conf

    env = compose["services"]["airflow-scheduler"]["environment"]
    commands = [key for key in env if key.startswith("AIRFLOW__") and key.endswith("_CMD")]
    assert len(commands) == 6
    for key in commands:
        _, section, option = key.removesuffix("_CMD").split("__", 2)
        assert (section.lower(), option.lower()) in conf.sensitive_config_values, key


def test_mlflow_runs_behind_basic_auth_with_its_password_from_a_secret(compose, run_secrets):
    from importlib.metadata import entry_points

    server = compose["services"]["mlflow"]
    args = server["command"]
    assert args[args.index("--app-name") + 1] == "basic-auth"
    assert "basic-auth" in {e.name for e in entry_points(group="mlflow.app")}
    import mlflow.server.auth  # noqa: F401  (it needs Flask-WTF, which docker/ installs)

    env = _env(compose, "mlflow", run_secrets)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "secret-mlflow_admin_password"
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" not in server["environment"]
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "secret-mlflow_flask_secret_key"
    # Its configuration file, as the image has it, keeps users on the mlflow-auth volume.
    config = env["MLFLOW_AUTH_CONFIG_PATH"]
    assert config == "/opt/cx/docker/mlflow-auth.ini"
    auth = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "from mlflow.server.auth.config import read_auth_config; c = read_auth_config(); "
         "print(c.database_uri, c.default_permission, c.admin_password)"],
        env={"MLFLOW_AUTH_CONFIG_PATH": str(DOCKER_DIR / "mlflow-auth.ini"), "PATH": ""},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    mount = next(v.split(":")[1] for v in server["volumes"] if v.startswith("mlflow-auth:"))
    assert auth == [f"sqlite:///{mount}/basic_auth.db", "READ", "None"]  # no password in it
    assert "mlflow-auth" in compose["volumes"]
    # The tasks log in as the admin, with the same secret.
    worker = _env(compose, "airflow-worker", run_secrets)
    assert worker["MLFLOW_TRACKING_USERNAME"] == env["MLFLOW_AUTH_ADMIN_USERNAME"]
    assert worker["MLFLOW_TRACKING_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"]


def test_the_secret_reader_renders_sets_and_refuses_what_is_missing(tmp_path):
    module = compose_secrets_module()
    folder = fake_secrets(tmp_path / "run")
    assert module.render("db://u:{cx_pg_password}@h/{cx_hash_key?}", folder) == (
        "db://u:secret-cx_pg_password@h/secret-cx_hash_key"
    )
    env = module.environment({"X_FROM_SECRETS": "{redis_password}", "Y": "kept"}, folder)
    assert env == {"X": "secret-redis_password", "Y": "kept"}
    (folder / "cx_loyalty_url").write_text("\n")  # optional and empty: the plain value stays
    env = module.environment(
        {"CX_LOYALTY_URL": "sqlite:///x.db", "CX_LOYALTY_URL_FROM_SECRETS": "{cx_loyalty_url?}"},
        folder,
    )
    assert env == {"CX_LOYALTY_URL": "sqlite:///x.db"}
    (folder / "cx_hash_key").write_text("")
    script = DOCKER_DIR / "compose_secrets.py"
    run = subprocess.run(
        [sys.executable, str(script), "exec", "env"],
        env={"CX_SECRETS_DIR": str(folder), "CX_HASH_KEY_FROM_SECRETS": "{cx_hash_key}",
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "secret 'cx_hash_key' is missing or empty" in run.stderr
    run = subprocess.run(
        [sys.executable, str(script), "exec", "env"],
        env={"CX_SECRETS_DIR": str(folder), "CX_PG_PASSWORD_FROM_SECRETS": "{cx_pg_password}",
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "CX_PG_PASSWORD=secret-cx_pg_password" in run.stdout.splitlines()
    assert "FROM_SECRETS" not in run.stdout


def test_init_writes_every_secret_once(tmp_path):
    from cryptography.fernet import Fernet

    module = compose_secrets_module()
    folder = tmp_path / "secrets"
    assert module.init(folder) == list(module.SECRETS)
    assert (folder.stat().st_mode & 0o777) == 0o700
    values = {p.name: p.read_text().strip() for p in folder.iterdir()}
    assert values.pop("cx_loyalty_url") == ""  # optional: written empty
    assert len(set(values.values())) == len(values) and all(len(v) >= 12 for v in values.values())
    Fernet(values["airflow_fernet_key"].encode())  # a valid key
    (folder / "redis_password").write_text("chosen\n")
    (folder / "cx_hash_key").unlink()
    assert module.init(folder) == ["cx_hash_key"]  # never overwrites one that exists
    assert (folder / "redis_password").read_text() == "chosen\n"


def test_workers_on_several_hosts_share_the_lake_through_the_override(compose):
    import yaml

    raw = yaml.safe_load(SHARED_LAKE.read_text())
    required = {n for n, ops in variables(SHARED_LAKE.read_text()).items() if ":?" in ops}
    assert required == {"CX_SHARED_NFS_SERVER", "CX_SHARED_LAKE_PATH", "CX_SHARED_LOGS_PATH"}
    assert required <= set(read_env_file(ENV_EXAMPLE))
    env = {**filled_env(), "CX_SHARED_NFS_SERVER": "nfs.internal", "CX_SHARED_LAKE_PATH": "/lake",
           "CX_SHARED_LOGS_PATH": "/logs"}  # fmt: skip
    merged = load_compose(env)
    merged["volumes"].update(interpolate(raw, env)["volumes"])
    assert _errors(merged) == []
    lake = merged["volumes"]["cx-data"]["driver_opts"]
    assert lake["type"] == "nfs" and lake["device"] == ":/lake"
    assert "addr=nfs.internal" in lake["o"]
    # Every Airflow service mounts the lake where the settings put CX_DATA_DIR.
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert "cx-data:" + service["environment"]["CX_DATA_DIR"] in service["volumes"], name
    with pytest.raises(MissingVariables):  # as .env.example leaves them: empty
        interpolate(raw, read_env_file(ENV_EXAMPLE))
    assert SHARED_LAKE.name in (DOCKER_DIR / "README.md").read_text()


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
        _, section, option = key.removesuffix("_CMD").split("__", 2)
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
