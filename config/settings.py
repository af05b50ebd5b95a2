"""Configuration flows one way: environment variables -> ``Settings`` -> function arguments.

Every field has a local default so ``make run`` works with no configuration at all. Each field
names its environment variable and says what it is for (``setting()``); ``python -m config.docs``
renders them as the table in docs/configuration.md. A bad value raises ``SettingsError`` naming
the variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SOURCES = ("loyalty", "surveys", "calls")
# Shapes of data the sample generator can take on (sample_data/README.md, Shapes); "default" is
# the two-year program with every source and column.
SAMPLE_SHAPES = (
    "default",
    "single_cohort",
    "purchase_only",
    "short_history",
    "seasonal",
    "required_columns",
)
SHORT_HISTORY_DAYS = 273
APPROVAL_MODES = ("required", "auto")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _env(env: dict[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _path(env, name, default: Path) -> Path:
    raw = _env(env, name)
    return Path(raw).expanduser().resolve() if raw else default


def _yaml_file(env, name, default: Path) -> Path:
    """A YAML file path; its existence is checked where it is read, so a missing programs file
    never stops the DAGs that do not use it from parsing."""
    path = _path(env, name, default)
    if path.suffix.lower() not in (".yml", ".yaml"):
        raise SettingsError(f"{name}={str(path)!r} must name a YAML file (.yml or .yaml)")
    return path


def _int(env, name, default: int, minimum: int | None = None) -> int:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _float(env, name, default: float, low: float, high: float) -> float:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} must be between {low} and {high}")
    return value


def _date(env, name, default: date) -> date:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a date in YYYY-MM-DD form") from None


def _memory(env, name, default: str) -> str:
    """A size DuckDB understands: a whole or decimal number and KB, MB, GB or TB."""
    raw = _env(env, name)
    if raw is None:
        return default
    value = raw.strip().replace(" ", "").upper()
    if not re.fullmatch(r"\d+(\.\d+)?(KB|MB|GB|TB)", value):
        raise SettingsError(f"{name}={raw!r} must be a size such as 4GB or 512MB")
    return value


def _choice(env, name, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(env, name)
    if raw is None:
        return default
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return raw


def _secret(env, name, min_length: int) -> str | None:
    raw = _env(env, name)
    if raw is not None and len(raw) < min_length:
        # The value itself is never echoed.
        raise SettingsError(
            f"{name} is too short ({len(raw)} characters); use at least {min_length}"
        )
    return raw


def _group(env, name) -> str | None:
    """A group name that exists on this machine (files are given it; see privacy.personal_files)."""
    import grp

    raw = _env(env, name)
    if raw is None:
        return None
    try:
        grp.getgrnam(raw)
    except KeyError:
        raise SettingsError(f"{name}={raw!r} is not a group on this machine") from None
    return raw


def _sources(env, name) -> tuple[str, ...]:
    raw = _env(env, name)
    if raw is None:
        return SOURCES
    chosen = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [source for source in chosen if source not in SOURCES]
    if unknown:
        raise SettingsError(f"{name} names unknown sources {unknown}; known: {', '.join(SOURCES)}")
    if not chosen:
        # A run with no source would land nothing and build an empty warehouse without a word.
        raise SettingsError(f"{name}={raw!r} names no source; use some of: {', '.join(SOURCES)}")
    return chosen


def _optional_date(env, name) -> date | None:
    raw = _env(env, name)
    return None if raw is None else _date(env, name, date.min)


def _shape(env, name) -> tuple[str, ...]:
    """Shape names in a fixed order, so the same combination always reads the same."""
    raw = _env(env, name)
    chosen = [part.strip() for part in (raw or "default").split(",") if part.strip()]
    unknown = [shape for shape in chosen if shape not in SAMPLE_SHAPES]
    if unknown:
        raise SettingsError(
            f"{name} names unknown shapes {unknown}; known: {', '.join(SAMPLE_SHAPES)}"
        )
    named = [shape for shape in SAMPLE_SHAPES[1:] if shape in chosen]
    return tuple(named) or ("default",)


def setting(env: str, doc: str, shown_default: str | None = None, **kwargs):
    """A ``Settings`` field read from ``env``: ``doc`` says what it is for, ``shown_default``
    words a default that depends on something else (else the docs show what ``load_settings()``
    returns with nothing set). ``python -m config.docs`` makes the configuration table from these.
    """
    return field(metadata={"env": env, "doc": doc, "shown_default": shown_default}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """Where everything lives and how big the sample is. Built by ``load_settings()``."""

    data_dir: Path = setting(
        "CX_DATA_DIR",
        "root of all local state (sample sources, lake, warehouse, MLflow, exports)",
    )
    # Sources (the interface with the outside world; see the contract in docs/sources.md).
    loyalty_url: str = setting(
        "CX_LOYALTY_URL",
        "SQLAlchemy URL of the loyalty database (`sqlite:////srv/cx/loyalty.db`, `postgresql://user:password@host/db`)",
    )
    survey_root: str = setting(
        "CX_SURVEY_ROOT",
        "fsspec URL of the survey export root (`<root>/<YYYY-MM-DD>/*.jsonl`)",
    )
    calls_root: str = setting(
        "CX_CALLS_ROOT",
        "fsspec URL of the call-center export root (`<root>/<YYYY-MM-DD>/*.csv`)",
    )
    enabled_sources: tuple[str, ...] = setting(
        "CX_SOURCES",
        "the sources to ingest, comma-separated, at least one (only `loyalty` by default with the `purchase_only` sample shape)",
    )
    # The day `make run` runs for and customer_360 is built as of; None: the sample's last day
    # on the sample, else the sources' latest day (``pipeline.run.as_of_date``).
    as_of: date | None = setting(
        "CX_AS_OF",
        "the day `make run` runs for (`YYYY-MM-DD`), and the date `customer_360` is built as of",
        shown_default="the sample's last day on the sample, else the latest day in the sources in `CX_SOURCES`",
    )
    # The lake and the warehouse.
    lake_dir: Path = setting(
        "CX_LAKE_DIR",
        "the raw lake: landed partitions, quarantine, manifests",
    )
    warehouse_target: str = setting(
        "CX_WAREHOUSE_TARGET",
        "the warehouse dbt builds: `duckdb` or `postgres`",
    )
    duckdb_path: Path = setting(
        "CX_DUCKDB_PATH",
        "the DuckDB warehouse file (the analysts' copy is `published/` beside it)",
    )
    # DuckDB's memory limit for dbt builds on the warehouse file; past it DuckDB spills to disk.
    duckdb_memory_limit: str = setting(
        "CX_DUCKDB_MEMORY_LIMIT",
        "memory DuckDB may use for the dbt build and for publishing the analysts' copy, such as `4GB` or `512MB` (it spills to disk past it)",
    )
    # How the warehouse DAG runs dbt: one `dbt build` task, or a task per model (Cosmos);
    # by default as DEFAULT_DBT_TASKS says for the warehouse.
    dbt_tasks: str = setting(
        "CX_DBT_TASKS",
        "how the warehouse DAG runs dbt: `single` (one `dbt build` task) or `per_model` (a task per model and snapshot, rendered by Cosmos)",
        shown_default="`single` on DuckDB, `per_model` on PostgreSQL",
    )
    # The PostgreSQL warehouse (CX_WAREHOUSE_TARGET=postgres); the password is never printed.
    pg_host: str = setting(
        "CX_PG_HOST",
        "PostgreSQL warehouse host (with `CX_WAREHOUSE_TARGET=postgres`)",
    )
    pg_port: int = setting(
        "CX_PG_PORT",
        "PostgreSQL warehouse port (`scripts/postgres.sh` listens on 55432)",
    )
    pg_user: str = setting(
        "CX_PG_USER",
        "PostgreSQL warehouse user",
    )
    pg_password: str = setting(
        "CX_PG_PASSWORD",
        "PostgreSQL warehouse password; secret: environment only, never printed",
        shown_default="empty",
        repr=False,
    )
    pg_dbname: str = setting(
        "CX_PG_DBNAME",
        "PostgreSQL warehouse database",
    )
    pg_schema: str = setting(
        "CX_PG_SCHEMA",
        "PostgreSQL schema the marts are built in",
    )
    # Ingestion behaviour.
    bad_row_threshold: float = setting(
        "CX_BAD_ROW_THRESHOLD",
        "share of bad rows (0 to 1) above which a landing fails",
    )
    late_lookback_days: int = setting(
        "CX_LATE_LOOKBACK_DAYS",
        "days re-read for late rows when a table has no recorded-at watermark",
    )
    # Tracking.
    mlflow_tracking_uri: str = setting(
        "CX_MLFLOW_TRACKING_URI",
        "MLflow tracking URI (under `make up`, setting it uses that server instead of starting one)",
    )
    # Who promotes a model: the gate alone, or the gate and then a person in the Airflow UI.
    model_approval: str = setting(
        "CX_MODEL_APPROVAL",
        "who promotes a model that passes the gate: `required` (it waits as `challenger` for a person to approve it in the Airflow UI, the train_models DAG's `approve_champion` task; a rejection or no answer in time keeps the champion) or `auto` (the gate alone: `make run` always runs so, since nobody is watching it)",
    )
    model_approval_hours: int = setting(
        "CX_MODEL_APPROVAL_HOURS",
        "hours a new champion waits for approval before it is taken as rejected",
    )
    # When the day's exports and cases must be out (a Deadline Alert on run_programs).
    delivery_deadline_minutes: int = setting(
        "CX_DELIVERY_DEADLINE_MINUTES",
        "minutes after a run_programs run is queued by which the day's exports and cases must be delivered; past it a Deadline Alert logs it, writes `alerts/` under the data folder and POSTs to the `cx_cases_webhook` connection",
    )
    # Sample data (only used by the generator and `make run`).
    sample_dir: Path = setting(
        "CX_SAMPLE_DIR",
        "where the sample generator writes",
    )
    sample_members: int = setting(
        "CX_SAMPLE_MEMBERS",
        "number of sample members",
    )
    sample_seed: int = setting(
        "CX_SAMPLE_SEED",
        "sample generator seed",
    )
    sample_start: date = setting(
        "CX_SAMPLE_START",
        "first day of the sample's history (`CX_SAMPLE_END` minus 273 days with the `short_history` shape)",
    )
    sample_end: date = setting(
        "CX_SAMPLE_END",
        "last day of the sample's history",
    )
    sample_shape: tuple[str, ...] = setting(
        "CX_SAMPLE_SHAPE",
        "shapes of the sample, comma-separated: `default`, or any of `single_cohort`, `purchase_only`, `short_history`, `seasonal`, `required_columns` (sample_data/README.md, Shapes)",
    )
    # Programs: the marketers' config, and where exports and the segment report land.
    programs_config: Path = setting(
        "CX_PROGRAMS_CONFIG",
        "the programs' YAML file (eligibility, priority, control share, contact rules)",
    )
    exports_dir: Path = setting(
        "CX_EXPORTS_DIR",
        "program exports per cycle (`<dir>/<cycle date>/`, `<dir>/latest`)",
    )
    # Cases: the CX team's rules, and where case files go and the team's updates come in.
    cases_config: Path = setting(
        "CX_CASES_CONFIG",
        "the case rules' YAML file (triggers, severities and service levels, what closes a case)",
    )
    cases_dir: Path = setting(
        "CX_CASES_DIR",
        "case files for the CX team (`<dir>/deliveries/<date>/`, `latest`) and their updates "
        "(`<dir>/updates/*.csv`)",
    )
    reports_dir: Path = setting(
        "CX_REPORTS_DIR",
        "the segment report (`segment-report.html`, and a dated copy per cycle)",
    )
    # Privacy: the erased members' keyed hashes, and the HMAC key (secret, never printed).
    suppression_list: Path = setting(
        "CX_SUPPRESSION_LIST",
        "keyed hashes of erased members, which ingestion drops",
    )
    hash_key: str | None = setting(
        "CX_HASH_KEY",
        "HMAC key (32+ characters) for the keyed hashes records are matched by and the suppression list; required once real sources are configured, and kept for good; secret: environment only, never printed",
        shown_default="none: a public key, on the sample sources only",
        repr=False,
    )
    # The group that may read files holding personal data (exports, the suppression list);
    # None: their owner only.
    personal_file_group: str | None = setting(
        "CX_PERSONAL_FILE_GROUP",
        "a group that may read the files holding personal data (program exports, the suppression list): written `0640` (`0440` once published) with that group; it must exist",
        shown_default="unset: `0600` (`0400`), the owner only",
        default=None,
    )
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def quarantine_dir(self) -> Path:
        return self.lake_dir / "quarantine"

    @property
    def raw_dir(self) -> Path:
        return self.lake_dir / "raw"

    def describe(self) -> dict[str, str]:
        """Settings as printable strings, with any password in a URL masked."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if "password" in f.name or f.name == "hash_key":
                out[f.name] = "***" if value else "(empty)"
                continue
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            out[f.name] = mask_url(text)
        return out


def sample_sources(settings: Settings) -> tuple[str, ...]:
    """The enabled sources (``CX_SOURCES``) that read the generated sample, in that order."""
    inside = f"{settings.sample_dir}/"
    locations = {
        "loyalty": settings.loyalty_url,
        "surveys": settings.survey_root,
        "calls": settings.calls_root,
    }
    return tuple(s for s in settings.enabled_sources if inside in f"{locations[s]}/")


def uses_sample(settings: Settings) -> bool:
    """Whether any enabled source is the generated sample; else the user brought their own.

    Only then does ``make run`` generate the sample, and only then may the sample's answer files
    be read. A disabled source's location does not count: its default is the sample's folder."""
    return bool(sample_sources(settings))


def mask_url(text: str) -> str:
    """Hide the password of a URL such as ``postgresql://user:secret@host/db``."""
    if "://" not in text or "@" not in text:
        return text
    scheme, rest = text.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}@{host}"


# CX_DBT_TASKS when unset, by warehouse: DuckDB's tasks take turns on one file, so a task per
# model buys no parallelism there; PostgreSQL runs independent models in parallel.
DEFAULT_DBT_TASKS = {"duckdb": "single", "postgres": "per_model"}

# The documented environment variables and what each is for, in the order of the fields.
ENV_VARS = {f.metadata["env"]: f.metadata["doc"] for f in fields(Settings) if "env" in f.metadata}


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the environment (or ``env``) into a ``Settings``; raise ``SettingsError`` on bad values."""
    env = dict(os.environ if env is None else env)
    data_dir = _path(env, "CX_DATA_DIR", REPO_ROOT / "data")
    sample_dir = _path(env, "CX_SAMPLE_DIR", data_dir / "sample")
    sample_shape = _shape(env, "CX_SAMPLE_SHAPE")
    sample_end = _date(env, "CX_SAMPLE_END", date(2026, 6, 30))
    start = date(2024, 7, 1)
    if "short_history" in sample_shape:
        start = sample_end - timedelta(days=SHORT_HISTORY_DAYS)
    sample_start = _date(env, "CX_SAMPLE_START", start)
    if sample_end <= sample_start:
        raise SettingsError(
            f"CX_SAMPLE_END={sample_end} must be after CX_SAMPLE_START={sample_start}"
        )
    lake_dir = _path(env, "CX_LAKE_DIR", data_dir / "lake")
    warehouse_target = _choice(env, "CX_WAREHOUSE_TARGET", "duckdb", ("duckdb", "postgres"))
    return Settings(
        data_dir=data_dir,
        loyalty_url=_env(env, "CX_LOYALTY_URL") or f"sqlite:///{sample_dir / 'loyalty.db'}",
        survey_root=_env(env, "CX_SURVEY_ROOT") or str(sample_dir / "surveys"),
        calls_root=_env(env, "CX_CALLS_ROOT") or str(sample_dir / "calls"),
        enabled_sources=(
            ("loyalty",)
            if "purchase_only" in sample_shape and _env(env, "CX_SOURCES") is None
            else _sources(env, "CX_SOURCES")
        ),
        as_of=_optional_date(env, "CX_AS_OF"),
        lake_dir=lake_dir,
        warehouse_target=warehouse_target,
        duckdb_path=_path(env, "CX_DUCKDB_PATH", data_dir / "warehouse" / "cx.duckdb"),
        duckdb_memory_limit=_memory(env, "CX_DUCKDB_MEMORY_LIMIT", "4GB"),
        dbt_tasks=_choice(
            env,
            "CX_DBT_TASKS",
            DEFAULT_DBT_TASKS[warehouse_target],
            ("per_model", "single"),
        ),
        pg_host=_env(env, "CX_PG_HOST") or "127.0.0.1",
        pg_port=_int(env, "CX_PG_PORT", 55432, minimum=1),
        pg_user=_env(env, "CX_PG_USER") or "cx",
        pg_password=_env(env, "CX_PG_PASSWORD") or "",
        pg_dbname=_env(env, "CX_PG_DBNAME") or "cx",
        pg_schema=_env(env, "CX_PG_SCHEMA") or "analytics",
        bad_row_threshold=_float(env, "CX_BAD_ROW_THRESHOLD", 0.05, 0.0, 1.0),
        late_lookback_days=_int(env, "CX_LATE_LOOKBACK_DAYS", 3, minimum=0),
        mlflow_tracking_uri=_env(env, "CX_MLFLOW_TRACKING_URI")
        or f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
        model_approval=_choice(env, "CX_MODEL_APPROVAL", "required", APPROVAL_MODES),
        model_approval_hours=_int(env, "CX_MODEL_APPROVAL_HOURS", 72, minimum=1),
        delivery_deadline_minutes=_int(env, "CX_DELIVERY_DEADLINE_MINUTES", 180, minimum=0),
        sample_dir=sample_dir,
        sample_members=_int(env, "CX_SAMPLE_MEMBERS", 5000, minimum=10),
        sample_seed=_int(env, "CX_SAMPLE_SEED", 7),
        sample_start=sample_start,
        sample_end=sample_end,
        sample_shape=sample_shape,
        programs_config=_yaml_file(
            env, "CX_PROGRAMS_CONFIG", REPO_ROOT / "programs" / "programs.yml"
        ),
        exports_dir=_path(env, "CX_EXPORTS_DIR", data_dir / "exports"),
        reports_dir=_path(env, "CX_REPORTS_DIR", data_dir / "reports"),
        cases_config=_yaml_file(env, "CX_CASES_CONFIG", REPO_ROOT / "programs" / "cases.yml"),
        cases_dir=_path(env, "CX_CASES_DIR", data_dir / "cases"),
        suppression_list=_path(
            env, "CX_SUPPRESSION_LIST", data_dir / "privacy" / "suppression.json"
        ),
        hash_key=_secret(env, "CX_HASH_KEY", min_length=32),
        personal_file_group=_group(env, "CX_PERSONAL_FILE_GROUP"),
    )
