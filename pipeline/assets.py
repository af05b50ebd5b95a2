"""The Assets that chain the DAGs: each landed raw table, then the warehouse marts.

Downstream DAGs are scheduled on these, so the warehouse runs when data lands, not by the clock.
"""

from __future__ import annotations

from airflow.sdk import Asset

from ingestion.contract import TABLES, Table


def raw_asset(table: Table) -> Asset:
    return Asset(
        name=f"raw.{table.source}.{table.name}",
        uri=f"lake://raw/{table.source}/{table.name}",
        group="raw",
    )


RAW_ASSETS = {table.qualified_name: raw_asset(table) for table in TABLES}

# The marts that later stages read: scoring reads the features, exports read customer_360.
MART_NAMES = ("customer_360", "member_features_pit", "dim_members", "fct_survey_responses")
MART_ASSETS = {
    name: Asset(name=f"warehouse.{name}", uri=f"warehouse://marts/{name}", group="warehouse")
    for name in MART_NAMES
}

# What the models write, and what the programs publish from it.
MODEL_ASSETS = {
    "champion_models": Asset(
        name="models.champions", uri="mlflow://registry/champions", group="models"
    ),
    "ml_scores": Asset(name="warehouse.ml_scores", uri="warehouse://ml/ml_scores", group="models"),
}
PROGRAM_ASSETS = {
    "exports": Asset(name="exports.programs", uri="exports://programs/latest", group="programs"),
}
