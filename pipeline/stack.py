"""Airflow for real on one machine: ``make up`` / ``make down`` and the end-to-end tests.

Starts the scheduler, dag-processor, triggerer, API server and task-log server (and, unless a
tracking URI is given, an MLflow tracking server) as background processes listening on 127.0.0.1
only, with the LocalExecutor and a parallelism of 4. The metadata database is PostgreSQL when one is reachable
(``CX_AIRFLOW_DB_URL``, else the local server of ``scripts/postgres.sh``, in a database of its
own), else SQLite.

Everything lives in one project-local folder (``CX_STACK_HOME``, default ``.airflow/stack``),
which is the stack's ``AIRFLOW_HOME``::

    run/<component>.log, run/<component>.pid     the processes' output and ids
    logs/                                        task logs, one folder per DAG run
    simple_auth_manager_passwords.json.generated the UI password (mode 0600)
    secrets.json                                 JWT, API and Fernet keys (mode 0600)
    stack.json                                   what is running: addresses, database

No password is a default: the admin password is ``CX_AIRFLOW_ADMIN_PASSWORD`` if set, else
generated once; it is never printed, only where to find it. ``python -m pipeline.stack
airflow ...`` runs the Airflow CLI against the stack (e.g. ``backfill create``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from config.settings import REPO_ROOT, mask_url
from pipeline.airflow_env import airflow_defaults

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server", "log-server")
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """The stack could not start, or a component died; the message says where its log is."""


@dataclass
class StackConfig:
    """What to start. ``from_env`` reads the ``CX_*`` variables that ``make up`` honours."""

    home: Path
    port: int = 8080
    db_url: str | None = None  # None: SQLite in the home
    mlflow_port: int | None = 5000  # None: no MLflow server (``CX_MLFLOW_TRACKING_URI`` is used)
    mlflow_backend: str | None = None  # None: SQLite in the home
    # The task-log server's port, for the scheduler's tasks and the triggerer's alike.
    log_port: int = 8793
    user: str = "admin"
    parallelism: int = 4
    # Seconds between re-parses of an unchanged DAG file: parsing costs CPU on a small machine.
    min_file_process_interval: int = 120
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def mlflow_url(self) -> str | None:
        return f"http://{LOOPBACK}:{self.mlflow_port}" if self.mlflow_port else None

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def password_file(self) -> Path:
        return self.home / PASSWORD_FILE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if env is None else env
        home = Path(env.get("CX_STACK_HOME") or REPO_ROOT / ".airflow" / "stack").resolve()
        tracking = env.get("CX_MLFLOW_TRACKING_URI")
        return cls(
            home=home,
            port=int(env.get("CX_AIRFLOW_PORT") or 8080),
            db_url=env.get("CX_AIRFLOW_DB_URL") or None,
            mlflow_port=None if tracking else int(env.get("CX_MLFLOW_PORT") or 5000),
            mlflow_backend=env.get("CX_MLFLOW_BACKEND_URL") or None,
            log_port=int(env.get("CX_AIRFLOW_LOG_PORT") or 8793),
            user=env.get("CX_AIRFLOW_ADMIN_USER") or "admin",
        )


# ---------------------------------------------------------------------------------------------
# Secrets and credentials: generated once, kept in files only the owner can read.
# ---------------------------------------------------------------------------------------------
def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def ensure_secrets(home: Path) -> dict[str, str]:
    """The keys every component must share (JWT signing, API sessions, connection encryption)."""
    path = home / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
        "fernet_key": Fernet.generate_key().decode(),
    }
    _write_private(path, json.dumps(values) + "\n")
    return values


def ensure_password(config: StackConfig, env: Mapping[str, str] | None = None) -> str:
    """The admin password: ``CX_AIRFLOW_ADMIN_PASSWORD`` if set, else the stored or a new one.

    Written where the SimpleAuthManager reads it, so it neither generates nor prints one.
    """
    env = os.environ if env is None else env
    path = config.password_file
    stored = json.loads(path.read_text()) if path.exists() else {}
    password = env.get("CX_AIRFLOW_ADMIN_PASSWORD") or stored.get(config.user)
    if not password:
        password = secrets.token_urlsafe(18)
    if stored.get(config.user) != password:
        stored[config.user] = password
        _write_private(path, json.dumps(stored) + "\n")
    return password


def read_password(config: StackConfig) -> str:
    return json.loads(config.password_file.read_text())[config.user]


# ---------------------------------------------------------------------------------------------
# Databases.
# ---------------------------------------------------------------------------------------------
def local_postgres_url() -> str | None:
    """The URL of scripts/postgres.sh's server if it is running (it is never started here)."""
    script = REPO_ROOT / "scripts" / "postgres.sh"
    status = subprocess.run([str(script), "status"], capture_output=True, check=False)
    if status.returncode != 0:
        return None
    return subprocess.run(
        [str(script), "url"], capture_output=True, text=True, check=True
    ).stdout.strip()


def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url`` if missing; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("select 1 from pg_database where datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                connection.exec_driver_sql(f'create database "{name}"')
    finally:
        engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def resolve_databases(config: StackConfig, use_postgres: bool = True) -> StackConfig:
    """Fill in the metadata and MLflow databases: PostgreSQL if reachable, else SQLite files."""
    server = local_postgres_url() if use_postgres and not config.db_url else None
    if server:
        config.db_url = ensure_database(server, os.environ.get("CX_AIRFLOW_DB_NAME", "cx_airflow"))
        if config.mlflow_port and not config.mlflow_backend:
            name = os.environ.get("CX_MLFLOW_DB_NAME", "cx_mlflow")
            config.mlflow_backend = ensure_database(server, name)
    config.db_url = config.db_url or f"sqlite:///{config.home / 'airflow.db'}"
    if config.mlflow_port and not config.mlflow_backend:
        config.mlflow_backend = f"sqlite:///{config.home / 'mlflow' / 'mlflow.db'}"
    return config


# ---------------------------------------------------------------------------------------------
# The environment every component runs with.
# ---------------------------------------------------------------------------------------------
def stack_env(config: StackConfig, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) plus the stack's Airflow configuration, which wins."""
    keys = ensure_secrets(config.home)
    env = dict(os.environ if base is None else base)
    pythonpath = env.get("PYTHONPATH", "")
    if str(REPO_ROOT) not in pythonpath.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), pythonpath) if p)
    # The same defaults as `make run` (no examples, no telemetry, ...), then the stack's own.
    env.update(airflow_defaults(config.home))
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Two cores here: a handful of workers, not Airflow's default of 32.
            "AIRFLOW__CORE__PARALLELISM": str(config.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{config.user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(config.password_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": config.db_url or "",
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(config.port),
            "AIRFLOW__API__BASE_URL": config.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(config.home / "logs"),
            # Airflow 3.3's own log servers (started by the scheduler and the triggerer unless
            # told --skip-serve-logs) bind every interface, with no setting for the address;
            # the stack runs one log server on loopback instead ("log-server"), which serves
            # the task and trigger logs alike from the one log folder, and the API server
            # fetches a running task's log from http://<task's hostname>:<port>, so the
            # hostname recorded is the loopback address.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(config.log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(config.log_port),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pipeline.stack.loopback_hostname",
            # Off by default; should someone turn it on, it too listens on loopback only.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": LOOPBACK,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(
                config.min_file_process_interval
            ),
        }
    )
    if config.mlflow_url:
        env["CX_MLFLOW_TRACKING_URI"] = config.mlflow_url
    env.update(config.extra_env)
    return env


def loopback_hostname() -> str:
    """The hostname Airflow records for tasks and the triggerer (``[core] hostname_callable``):
    the address the stack's log server listens on, whatever this machine's name resolves to."""
    return LOOPBACK


def serve_logs(port: int | None = None) -> None:
    """Airflow's task-log server (the app ``airflow scheduler`` would start), on loopback only.

    It serves files from ``[logging] base_log_folder`` to holders of a JWT signed with
    ``[api] secret_key``, i.e. to the API server.
    """
    import uvicorn
    from airflow.configuration import conf

    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        host=LOOPBACK,
        port=port or conf.getint("logging", "worker_log_server_port"),
        log_level="info",
        log_config=None,
        access_log=False,
    )


def _airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _mlflow_bin() -> str:
    return str(Path(sys.executable).with_name("mlflow"))


def component_argv(name: str, config: StackConfig) -> list[str]:
    if name == "api-server":
        return [_airflow_bin(), "api-server", "--host", LOOPBACK, "--port", str(config.port)]
    if name == "mlflow":
        artifacts = config.home / "mlflow" / "artifacts"
        return [
            _mlflow_bin(),
            "server",
            "--host",
            LOOPBACK,
            "--port",
            str(config.mlflow_port),
            "--workers",
            "1",
            # The backend store URI comes from the environment (it may hold a password).
            "--serve-artifacts",
            "--artifacts-destination",
            artifacts.as_uri(),
        ]
    if name == "log-server":
        return [sys.executable, "-m", "pipeline.stack", "serve-logs"]
    if name in ("scheduler", "triggerer"):
        # Their own log servers would listen on every interface: see "log-server".
        return [_airflow_bin(), name, "--skip-serve-logs"]
    return [_airflow_bin(), name]


# ---------------------------------------------------------------------------------------------
# Processes.
# ---------------------------------------------------------------------------------------------
def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Something accepts connections on ``LOOPBACK:port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (tasks run in process groups of their own)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, a unique identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def read_pids(config: StackConfig) -> dict[str, tuple[int, str]]:
    """``{component: (pid, start time)}`` from the pid files."""
    pids = {}
    for path in sorted(config.run_dir.glob("*.pid")):
        try:
            pid, started = path.read_text().split()[:2]
            pids[path.stem] = (int(pid), started)
        except ValueError:
            continue
    return pids


def _is_ours(pid: int, started: str) -> bool:
    """The pid file's process is still the one we started (pids get reused; Airflow retitles
    its processes, so the command line is no proof)."""
    return _pid_alive(pid) and _start_time(pid) == started


def running(config: StackConfig) -> dict[str, int]:
    return {
        name: pid for name, (pid, started) in read_pids(config).items() if _is_ours(pid, started)
    }


def start_process(name: str, argv: list[str], env: Mapping[str, str], run_dir: Path) -> int:
    """Start ``argv`` detached in its own session, output to ``run/<name>.log``; return the pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
            start_new_session=True,
        )
    (run_dir / f"{name}.pid").write_text(f"{process.pid} {_start_time(process.pid)}\n")
    return process.pid


def _log_tail(config: StackConfig, name: str, lines: int = 30) -> str:
    path = config.run_dir / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _signal(pid: int, sig: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(config: StackConfig, timeout: float = 45) -> list[str]:
    """Stop every component of the stack (and every process below them). Idempotent.

    Each component was started as the leader of its own process group, which gets SIGTERM;
    task processes (groups of their own) are stopped by their supervisor, and whatever still
    runs after ``timeout`` seconds gets SIGKILL.
    """
    pids = running(config)
    tree = {pid: descendants(pid) for pid in pids.values()}
    # The API server and MLflow first, so nothing new reaches the scheduler while it drains.
    order = sorted(pids, key=lambda n: (n not in ("api-server", "mlflow"), n != "scheduler"))
    for name in order:
        _signal(pids[name], signal.SIGTERM, group=True)
    deadline = time.monotonic() + timeout
    everything = [pid for top, below in tree.items() for pid in (top, *below)]
    while time.monotonic() < deadline and any(_pid_alive(pid) for pid in everything):
        time.sleep(0.5)
    # Whatever did not exit in time, and anything started meanwhile below the components.
    for top in pids.values():
        for pid in [*descendants(top), *tree[top], top]:
            if _pid_alive(pid):
                _signal(pid, signal.SIGKILL)
    for path in config.run_dir.glob("*.pid"):
        path.unlink(missing_ok=True)
    return order


# ---------------------------------------------------------------------------------------------
# Health.
# ---------------------------------------------------------------------------------------------
def _http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return 0, b""
    return response.status_code, response.content


def health(config: StackConfig) -> dict:
    """Airflow's ``/api/v2/monitor/health``: metadatabase, scheduler, triggerer, dag_processor."""
    code, body = _http_get(f"{config.base_url}/api/v2/monitor/health")
    return json.loads(body) if code == 200 else {}


def _healthy(report: dict) -> bool:
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((report.get(part) or {}).get("status") == "healthy" for part in parts)


def wait_until_healthy(config: StackConfig, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = health(config)
        mlflow_up = not config.mlflow_url or _http_get(f"{config.mlflow_url}/health")[0] == 200
        if _healthy(report) and mlflow_up and listening(config.log_port):
            return report
        dead = [name for name, (pid, t) in read_pids(config).items() if not _is_ours(pid, t)]
        if dead:
            raise StackError(
                f"{', '.join(dead)} exited; last lines of run/{dead[0]}.log:\n"
                + _log_tail(config, dead[0])
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"not healthy after {timeout:.0f}s (health: {report or 'no answer'}); "
                f"see the logs in {config.run_dir}"
            )
        time.sleep(2)


def dag_ids_in_folder() -> list[str]:
    """One DAG per file, ``dag_id`` equal to the file name (the house style)."""
    return sorted(p.stem for p in (REPO_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))


# ---------------------------------------------------------------------------------------------
# up / down.
# ---------------------------------------------------------------------------------------------
def _airflow_cli(env: Mapping[str, str], *args: str) -> None:
    result = subprocess.run(
        [_airflow_bin(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        cwd=str(REPO_ROOT),
    )
    if result.returncode != 0:
        raise StackError(
            f"`airflow {' '.join(args)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def migrate(env: Mapping[str, str]) -> None:
    """Create or upgrade the metadata database, and the pools the DAGs use (as `make run` does)."""
    _airflow_cli(env, "db", "migrate")
    from pipeline import run

    for name, (slots, description) in getattr(run, "POOLS", {}).items():
        _airflow_cli(env, "pools", "set", name, str(slots), description)


def write_state(config: StackConfig) -> None:
    """``stack.json`` (private: the database URLs may hold a password) for later commands."""
    state = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in asdict(config).items()
        if key != "extra_env"
    }
    state["base_url"], state["mlflow_url"] = config.base_url, config.mlflow_url
    state["pids"] = read_pids(config)
    _write_private(config.home / "stack.json", json.dumps(state, indent=2) + "\n")


def load_state(config: StackConfig) -> StackConfig:
    """The configuration the running (or last) stack was started with, if any."""
    path = config.home / "stack.json"
    if not path.exists():
        return config
    state = json.loads(path.read_text())
    keys = ("port", "log_port", "db_url", "mlflow_port", "mlflow_backend", "user", "parallelism")
    for key in keys:
        if key in state:
            setattr(config, key, state[key])
    return config


def up(
    config: StackConfig,
    *,
    base_env: Mapping[str, str] | None = None,
    wait_for_dags: bool = True,
    timeout: float = 300,
) -> dict:
    """Start the stack (unless it is already running) and wait until it is healthy.

    Returns the health report and, with ``wait_for_dags``, the DAG ids the API lists and the
    import errors it reports.
    """
    config.home.mkdir(parents=True, exist_ok=True)
    already = running(config)
    if already:
        missing = [name for name in (*COMPONENTS, "mlflow") if name not in already]
        if config.mlflow_port is None:
            missing = [name for name in missing if name != "mlflow"]
        if missing:
            raise StackError(
                f"a partial stack is running in {config.home} ({sorted(already)}); "
                "run `make down` first"
            )
    else:
        for port in filter(None, (config.port, config.mlflow_port, config.log_port)):
            if not port_free(port):
                raise StackError(
                    f"port {port} on {LOOPBACK} is in use; choose another with CX_AIRFLOW_PORT, "
                    "CX_MLFLOW_PORT or CX_AIRFLOW_LOG_PORT"
                )
        ensure_password(config, base_env)
        env = stack_env(config, base_env)
        migrate(env)
        if config.mlflow_port:
            (config.home / "mlflow").mkdir(parents=True, exist_ok=True)
            # No GenAI job runner: it would add a dozen worker processes that nothing here uses.
            mlflow_env = {
                **env,
                "MLFLOW_BACKEND_STORE_URI": config.mlflow_backend or "",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            }
            start_process("mlflow", component_argv("mlflow", config), mlflow_env, config.run_dir)
        for name in COMPONENTS:
            start_process(name, component_argv(name, config), env, config.run_dir)
        write_state(config)
    try:
        report = {"health": wait_until_healthy(config, timeout)}
        if wait_for_dags:
            from pipeline.airflow_rest import AirflowClient

            client = AirflowClient(config.base_url, config.user, read_password(config))
            report.update(client.wait_for_dags(dag_ids_in_folder(), timeout=timeout))
    except BaseException:
        if not already:
            stop(config)
        raise
    return report


def banner(config: StackConfig, report: Mapping) -> str:
    """What ``make up`` prints: where the UI is and how to log in (never the password)."""
    try:
        password_file = config.password_file.relative_to(Path.cwd())
    except ValueError:
        password_file = config.password_file
    lines = [
        f"Airflow is up: {config.base_url}  (REST API: {config.base_url}/api/v2)",
        f"  log in as '{config.user}'; the password is in {password_file}",
        "  (set CX_AIRFLOW_ADMIN_PASSWORD before `make up` to choose it)",
        f"  REST token: POST {config.base_url}/auth/token with username and password",
        f"  metadata database: {mask_url(config.db_url or '')}",
    ]
    if config.mlflow_url:
        lines.append(
            f"  MLflow: {config.mlflow_url} (backend {mask_url(config.mlflow_backend or '')})"
        )
    if "dags" in report:
        errors = report.get("import_errors") or []
        lines.append(
            f"  DAGs: {len(report['dags'])} listed, {len(errors)} import errors"
            " (new DAGs start paused: unpause them in the UI)"
        )
        lines.extend(f"    import error: {e}" for e in errors)
    lines.append(f"  logs: {config.run_dir}/<component>.log, task logs in {config.home / 'logs'}")
    lines.append("  `make down` stops it; `make airflow ARGS='dags list'` runs the CLI against it.")
    return "\n".join(lines)


def prepare_project() -> None:
    """What the DAGs need on a fresh clone: the sample sources they read (when the sources are
    the sample) and dbt's manifest, which the warehouse DAG renders its tasks from."""
    from config import load_settings
    from pipeline.run import ensure_sample

    settings = load_settings()
    ensure_sample(settings)
    try:
        from pipeline.dbt_tasks import ensure_manifest
    except ImportError:  # a checkout whose warehouse DAG runs one dbt task needs no manifest
        return
    ensure_manifest(settings)


def main(argv: Iterable[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the stack and wait until it is healthy")
    up_parser.add_argument("--sqlite", action="store_true", help="SQLite even if PostgreSQL runs")
    up_parser.add_argument("--no-mlflow", action="store_true", help="start no MLflow server")
    sub.add_parser("down", help="stop every component")
    sub.add_parser("status", help="print what runs and its health; exit 3 when down")
    cli = sub.add_parser("airflow", help="run the Airflow CLI against the stack")
    cli.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("serve-logs", help="(a component of the stack) the task-log server")
    args = parser.parse_args(list(argv) if argv is not None else None)

    if args.command == "serve-logs":
        serve_logs()
        return 0

    config = StackConfig.from_env()
    if args.command == "down":
        stopped = stop(config)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args.command == "status":
        config = load_state(config)
        pids = running(config)
        if not pids:
            print(f"not running ({config.home})")
            return 3
        print(json.dumps({"pids": pids, "health": health(config)}, indent=2))
        return 0
    if args.command == "airflow":
        config = load_state(config)
        if not config.db_url:
            config = resolve_databases(config)
        cli_args = [a for a in args.args if a != "--"]
        return subprocess.call([_airflow_bin(), *cli_args], env=stack_env(config))
    if running(config):  # already up: report on it as it was started
        config = load_state(config)
    else:
        if args.no_mlflow:
            config.mlflow_port = None
        config = resolve_databases(config, use_postgres=not args.sqlite)
    prepare_project()
    try:
        report = up(config)
    except StackError as error:
        print(f"make up failed: {error}", file=sys.stderr)
        return 1
    print(banner(config, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
