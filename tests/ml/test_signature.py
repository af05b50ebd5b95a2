"""The registered model's signature takes customer_360 rows as the warehouse returns them, nulls
in integer columns included (a member who never answered a survey has no latest_nps_score)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models.utils import _enforce_schema

from ml.train import warehouse_signature


def test_a_nullable_integer_column_passes_the_signature():
    rows = pd.DataFrame(
        {
            "latest_nps_score": pd.array([9, None, 3], dtype="Int64"),
            "transactions_90d": np.array([1, 0, 4], dtype="int64"),
            "spend_90d": [10.5, None, 3.0],
            "is_closed": pd.array([False, None, True], dtype="boolean"),
        }
    )
    signature = warehouse_signature(rows, list(rows.columns), np.zeros((3, 2)))
    enforced = _enforce_schema(rows, signature.inputs)
    assert enforced["latest_nps_score"].isna().tolist() == [False, True, False]
    assert enforced["spend_90d"].dtype == "float64"
    # A later day without nulls in the same column still passes.
    full = rows.assign(latest_nps_score=pd.array([9, 7, 3], dtype="Int64"))
    assert len(_enforce_schema(full, signature.inputs)) == 3
