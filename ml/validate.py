"""Great Expectations suite on the feature frame, run before training and before scoring.

A model fed a column of nulls, a negative count or an NPS of 14 still returns numbers; this suite
makes such a frame fail loudly instead. Keys and relationships inside the warehouse are dbt tests
and are not repeated here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# Counts and durations: never negative.
NON_NEGATIVE = (
    "tenure_days",
    "days_since_last_transaction",
    "transactions_30d",
    "transactions_90d",
    "transactions_365d",
    "survey_responses_total",
    "negative_moments_30d",
    "positive_moments_30d",
    "negative_moments_90d",
    "positive_moments_90d",
    "calls_90d",
    "unresolved_calls_90d",
    "escalated_calls_90d",
    "repeat_contacts_90d",
    "avg_queue_seconds_90d",
)
# Survey scales and shares: the bounds of the instrument.
BOUNDED = {
    "latest_nps_score": (0, 10),
    "nps_score_change": (-10, 10),
    "latest_csat_score": (1, 5),
    "csat_score_change": (-4, 4),
    "latest_ces_score": (1, 7),
    "ces_score_change": (-6, 6),
    "latest_engagement_index": (0, 100),
    "engagement_index_change": (-100, 100),
    "store_share_365d": (0, 1),
    "online_share_365d": (0, 1),
    "app_share_365d": (0, 1),
}


class FeatureValidationError(ValueError):
    """The feature frame failed its expectation suite; the message lists what failed."""


def build_suite(columns: Sequence[str], name: str = "ml_features"):
    """The expectation suite for a frame that should hold exactly ``columns``."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    suite.add_expectation(
        gx.expectations.ExpectTableColumnsToMatchSet(column_set=list(columns), exact_match=True)
    )
    for column in columns:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeInTypeList(
                column=column,
                type_list=["float64", "float32", "int64", "int32", "Float64", "Int64"],
            )
        )
        # "Not all null": a feature that vanished upstream would otherwise be silently imputed.
        suite.add_expectation(
            gx.expectations.ExpectColumnProportionOfNonNullValuesToBeBetween(
                column=column, min_value=1e-9
            )
        )
        if column in NON_NEGATIVE:
            suite.add_expectation(
                gx.expectations.ExpectColumnValuesToBeBetween(column=column, min_value=0)
            )
        if column in BOUNDED:
            low, high = BOUNDED[column]
            suite.add_expectation(
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column=column, min_value=low, max_value=high
                )
            )
    return suite


def validate_features(frame: pd.DataFrame, columns: Sequence[str], stage: str) -> dict:
    """Run the suite on ``frame`` in an ephemeral context; raise ``FeatureValidationError``.

    The suite runs asking only pass or fail (``BOOLEAN_ONLY``): GX's default ``SUMMARY`` also
    collects every failing column's unexpected values, which cost half the suite's time on a
    million members that pass. Only an expectation that fails runs again with ``SUMMARY``, for
    the observed value and examples the message shows.

    Returns a small summary (expectations evaluated and passed) for logging.
    """
    from great_expectations.core.result_format import ResultFormat

    from config.gx_context import ephemeral_context

    context = ephemeral_context()
    source = context.data_sources.add_pandas(name=f"ml_{stage}")
    asset = source.add_dataframe_asset(name="features")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        build_suite(columns, name=f"ml_features_{stage}"), result_format=ResultFormat.BOOLEAN_ONLY
    )
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        detail = batch.validate(config.to_domain_obj(), result_format=ResultFormat.SUMMARY)
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        observed = (detail.result or {}).get("observed_value", "")
        unexpected = (detail.result or {}).get("partial_unexpected_list", "")
        failures.append(f"{config.type} {kwargs} observed={observed} examples={unexpected}")
    summary = {"evaluated": len(result.results), "passed": len(result.results) - len(failures)}
    if failures:
        raise FeatureValidationError(
            f"feature frame failed validation before {stage} ({len(failures)} of "
            f"{len(result.results)} expectations):\n  " + "\n  ".join(failures)
        )
    return summary
