"""Great Expectations at the boundary: a suite per landed table, built from the contract.

Row-level problems were already sent to quarantine by ``parse.py``; this suite is the gate on
what is about to be published: every contract column is there, required values are present,
numbers are in range, enums mostly known, and rows exist where rows are expected. It runs on the
staged Parquet as an Arrow-backed pandas frame (GX cannot run its SQL on DuckDB, GX #10738), and
only on the columns it checks. Personal-data columns carry no expectation, and results keep
counts but no values (``RESULT_FORMAT``), so no personal value can appear in a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingestion.contract import Table

# Unknown enum values are kept (the warehouse maps them) but more than this share fails the run.
ENUM_MOSTLY = 0.95
# Counts, never values: a source that puts an email in the tier column must not get it into a
# result (or a log) through GX's lists of unexpected values.
RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
}


@dataclass(frozen=True)
class ValidationSummary:
    success: bool
    evaluated: int
    failed: list[dict]

    def as_dict(self) -> dict:
        return {"success": self.success, "evaluated": self.evaluated, "failed": self.failed}


def build_expectations(table: Table, expect_rows: bool) -> list:
    import great_expectations as gx

    expectations = []
    for column in table.columns:
        expectations.append(gx.expectations.ExpectColumnToExist(column=column.name))
        if column.personal:
            continue
        if column.required:
            expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=column.name))
        if column.min_value is not None or column.max_value is not None:
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column=column.name, min_value=column.min_value, max_value=column.max_value
                )
            )
        if column.accepted:
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column=column.name, value_set=list(column.accepted), mostly=ENUM_MOSTLY
                )
            )
    if expect_rows:
        expectations.append(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    return expectations


# Rows per validated chunk: a full history at a million members is tens of millions of rows,
# and a pandas frame of them would not fit in memory; the suite runs on each chunk in turn and
# the counts are added up (every expectation in the suite is a per-row count or a row count).
CHUNK_ROWS = 1_000_000


def validate_parquet(
    path: Path, table: Table, expect_rows: bool, chunk_rows: int = CHUNK_ROWS
) -> ValidationSummary:
    """Run the table's suite on a staged Parquet file; return what passed and what failed."""
    import great_expectations as gx
    import pyarrow.parquet as pq

    from config.gx_context import ephemeral_context

    context = ephemeral_context()
    source = context.data_sources.add_pandas(f"landing_{table.source}")
    asset = source.add_dataframe_asset(table.name)
    batch = asset.add_batch_definition_whole_dataframe("staged")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{table.source}.{table.name}"))
    for expectation in build_expectations(table, expect_rows):
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{table.source}.{table.name}", data=batch, suite=suite)
    )
    checked = [c.name for c in table.columns if not c.personal]
    parquet = pq.ParquetFile(path)
    chunks = parquet.iter_batches(batch_size=chunk_rows, columns=checked)
    results = []
    for arrow in chunks if parquet.metadata.num_rows else [parquet.schema_arrow.empty_table()]:
        frame = _frame(arrow.select(checked), table)
        run = definition.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
        results.append(run.results)
        del frame
    outcomes = [_combine([chunk[i] for chunk in results]) for i in range(len(results[0]))]
    failed = [outcome for outcome in outcomes if not outcome.pop("success")]
    return ValidationSummary(success=not failed, evaluated=len(outcomes), failed=failed)


def _frame(arrow, table: Table):
    """A chunk as the pandas frame GX checks."""
    import pyarrow as pa

    # Decimals as floats so GX's range checks compare them as numbers.
    arrow = arrow.cast(
        pa.schema(
            pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f
            for f in arrow.schema
        )
    )
    # Numbers as NumPy integers or floats (NaN for nulls), never pandas' nullable Int64: GX's
    # range check is vectorised only for NumPy dtypes and loops over every row in Python
    # otherwise (a 2.3M-row table took 20 s instead of 1). Nulls are not range-checked anyway.
    frame = arrow.to_pandas()
    # Columns GX must see as present but whose values it never reads.
    for column in table.columns:
        if column.personal:
            frame[column.name] = None
    return frame


def _combine(chunks: list) -> dict:
    """One expectation's outcome over the whole file from its outcome on each chunk."""
    config = chunks[0].expectation_config
    outcome = {
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "unexpected_count": None,
        "unexpected_percent": None,
        "observed_value": None,
    }
    results = [chunk.result for chunk in chunks]
    if config.type == "expect_table_row_count_to_be_between":
        rows = sum(r.get("observed_value") or 0 for r in results)
        low, high = config.kwargs.get("min_value"), config.kwargs.get("max_value")
        outcome["observed_value"] = rows
        outcome["success"] = (low is None or rows >= low) and (high is None or rows <= high)
        return outcome
    if "unexpected_count" not in results[0]:  # column existence: the same on every chunk
        outcome["observed_value"] = results[0].get("observed_value")
        outcome["success"] = all(chunk.success for chunk in chunks)
        return outcome
    unexpected = sum(r["unexpected_count"] or 0 for r in results)
    considered = sum(r["element_count"] - (r.get("missing_count") or 0) for r in results)
    if config.type == "expect_column_values_to_not_be_null":
        considered = sum(r["element_count"] for r in results)
    share = unexpected / considered if considered else 0.0
    mostly = config.kwargs.get("mostly")
    mostly = 1.0 if mostly is None else mostly
    outcome["unexpected_count"] = unexpected
    outcome["unexpected_percent"] = 100 * share
    # GX's rule: the expected share must be at least ``mostly``.
    outcome["success"] = 1.0 - share >= mostly - 1e-12
    return outcome
