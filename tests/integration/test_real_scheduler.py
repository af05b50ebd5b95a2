"""The whole chain on the real scheduler: `make up`'s stack, the REST API, Asset scheduling.

Ingestion is triggered through the REST API (``POST /api/v2/dags/{dag_id}/dagRuns`` with a JWT
from ``/auth/token``); the warehouse, scoring and programs must then start by themselves, from
the Assets the DAG before emits. Training is triggered through the API once the warehouse is
built, and scoring loads its champion from an MLflow server over HTTP (PostgreSQL backend
store). See ``tests/real_stack.py`` for the stack and the chain; ``make test-scheduler`` runs
this with the browser test.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from real_stack import AFTER_TRAINING, BEFORE_TRAINING, TRAINING, chain, real_stack  # noqa: F401

from pipeline import stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.scheduler,
    pytest.mark.timeout(3600),
]


def test_every_dag_is_listed_without_import_errors(real_stack):  # noqa: F811
    with real_stack.client() as client:
        listed = {dag["dag_id"] for dag in client.dags()}
        errors = client.import_errors()
    assert listed == set(stack.dag_ids_in_folder())
    assert errors == []


def test_the_servers_listen_on_loopback_only(real_stack):  # noqa: F811
    config = real_stack.config
    for port in (config.port, config.mlflow_port):
        listening = _listening_addresses(port)
        assert listening, f"nothing listens on port {port}"
        assert listening <= {"127.0.0.1"}, listening


def test_the_api_refuses_requests_without_a_token(real_stack):  # noqa: F811
    import httpx

    response = httpx.get(f"{real_stack.config.base_url}/api/v2/dags", trust_env=False)
    assert response.status_code == 401
    bad = httpx.post(
        f"{real_stack.config.base_url}/auth/token",
        json={"username": real_stack.config.user, "password": "admin"},
        trust_env=False,
    )
    assert bad.status_code == 401


def test_the_chain_succeeds_through_asset_scheduling(real_stack, chain):  # noqa: F811
    if chain.error is not None:
        raise chain.error
    dag_ids = set(stack.dag_ids_in_folder())
    for dag_id, run in chain.triggered.items():
        assert chain.runs[dag_id]["dag_run_id"] == run["dag_run_id"]
        assert run["run_type"] == "manual"
    for dag_id in (*BEFORE_TRAINING, *AFTER_TRAINING):
        if dag_id in dag_ids:
            assert chain.runs[dag_id]["state"] == "success"
            assert chain.runs[dag_id]["run_type"] == "asset_triggered", dag_id
    print("\nseconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in chain.seconds.items()))
    # Nothing else ran and failed on the side (a duplicate scheduled run, a retry).
    with real_stack.client() as client:
        failed = {
            dag_id: [r["dag_run_id"] for r in client.dag_runs(dag_id) if r["state"] != "success"]
            for dag_id in dag_ids
        }
    assert not any(failed.values()), failed


def test_the_lake_holds_the_triggered_interval(real_stack, chain):  # noqa: F811
    _require(chain, "ingest_loyalty")
    settings = real_stack.settings
    end = chain.triggered["ingest_loyalty"]["data_interval_end"][:10].replace("-", "")
    manifests = sorted((settings.lake_dir / "manifests").rglob(f"*--{end}T000000Z.json"))
    tables = {
        path.parent.relative_to(settings.lake_dir / "manifests").as_posix() for path in manifests
    }
    assert {
        "loyalty/members",
        "loyalty/transactions",
        "surveys/responses",
        "calls/contacts",
    } <= tables
    members = json.loads(next(p for p in manifests if p.parent.name == "members").read_text())
    assert members["rows_landed"] == int(real_stack.env["CX_SAMPLE_MEMBERS"])
    assert members["validation"]["success"] is True


def test_scores_come_from_the_champions_served_over_http(real_stack, chain):  # noqa: F811
    _require(chain, "score_members")
    import mlflow

    from ml.train import CHURN_MODEL, SEGMENT_MODEL

    tracking = real_stack.config.mlflow_url
    assert tracking and tracking.startswith("http://127.0.0.1:")
    client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    churn = client.get_model_version_by_alias(CHURN_MODEL, "champion")
    segment = client.get_model_version_by_alias(SEGMENT_MODEL, "champion")
    # Artifacts are served by the tracking server (proxied), so scoring fetched them over HTTP.
    run = client.get_run(churn.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    assert run.data.tags.get("dag_run_id") == chain.runs[TRAINING]["dag_run_id"]

    warehouse = real_stack.settings.duckdb_path
    with duckdb.connect(str(warehouse), read_only=True) as con:
        versions = con.execute("select distinct model_version from ml_scores").fetchall()
        scored, members = con.execute(
            "select count(*), count(distinct member_id) from ml_scores"
        ).fetchone()
        open_members = con.execute(
            "select count(*) from customer_360 where not is_closed"
        ).fetchone()[0]
    assert versions == [(f"{CHURN_MODEL}/{churn.version}+{SEGMENT_MODEL}/{segment.version}",)]
    assert scored == members == open_members > 0


def test_programs_export_from_the_new_scores(real_stack, chain):  # noqa: F811
    _require(chain, "run_programs")
    exports = real_stack.settings.exports_dir / "latest"
    manifest = json.loads((exports / "manifest.json").read_text())
    import mlflow

    tracking = real_stack.config.mlflow_url
    champion = mlflow.MlflowClient(tracking_uri=tracking).get_model_version_by_alias(
        "cx_churn", "champion"
    )
    assert manifest["model_versions"]["churn_model"] == f"cx_churn/{champion.version}"
    assert manifest["programs"]
    for program in manifest["programs"]:
        assert any(exports.glob(f"{program['name']}*")), program["name"]


def test_task_logs_are_in_the_stack_home(real_stack, chain):  # noqa: F811
    if chain.error is not None and not chain.runs:
        pytest.skip("no run finished")
    logs = real_stack.config.home / "logs"
    for dag_id, run in chain.runs.items():
        folder = logs / f"dag_id={dag_id}" / f"run_id={run['dag_run_id']}"
        assert any(folder.rglob("attempt=1.log")), folder


def _require(finished, dag_id: str) -> None:
    if dag_id not in stack.dag_ids_in_folder():
        pytest.skip(f"dags/{dag_id}.py does not exist yet")
    if dag_id not in finished.runs:
        raise AssertionError(f"the chain stopped before {dag_id}") from finished.error


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            found.add(_address(address, width))
    return found


def _address(hex_address: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_address)
    if width == 8:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))
