"""Registering models and promoting them with aliases (``champion``, ``challenger``), never stages.

The gate: a new version becomes ``champion`` only if it beats the current champion *on the same
holdout* (the champion is re-scored on today's holdout, not trusted from its own old run) by a
margin. With no champion yet, it must beat the baseline (recency rule or majority class) by the
same margin. Anything else becomes ``challenger``, kept for comparison and rollback.

With approval required (``CX_MODEL_APPROVAL=required``) a version the gate would promote stays
``challenger`` with the tag ``approval=pending`` until a person answers in the Airflow UI:
``approve`` moves ``champion`` to it, ``keep_champion`` records the rejection or the timeout on
its tags and leaves the champion where it was. The first version (no champion yet) waits too:
it is the first model whose lists reach customers, the moment a person most needs to look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MARGIN = 0.005
APPROVAL_TAG = "approval"
PENDING = "pending"


@dataclass(frozen=True)
class PromotionDecision:
    """Which alias the candidate gets and why, in words for the run log and model card."""

    alias: str
    reason: str
    # The gate would promote it, but a person must approve first (it is challenger meanwhile).
    pending: bool = False


def decide_promotion(
    candidate: float,
    champion: float | None,
    baseline: float,
    margin: float = DEFAULT_MARGIN,
    metric: str = "metric",
    baseline_margin: float | None = None,
) -> PromotionDecision:
    """Pure gate. A tie (or a gain below ``margin``) keeps the incumbent: churn in the champion
    costs marketers a change of lists for no measured gain. The first version must reach the
    baseline plus ``baseline_margin`` (``margin`` unless given)."""
    if champion is None:
        needed = margin if baseline_margin is None else baseline_margin
        if candidate >= baseline + needed:
            return PromotionDecision(
                CHAMPION,
                f"no champion yet; {metric} {candidate:.4f} beats the baseline {baseline:.4f} "
                f"by at least {needed}",
            )
        return PromotionDecision(
            CHALLENGER,
            f"no champion yet, but {metric} {candidate:.4f} does not beat the baseline "
            f"{baseline:.4f} by {needed}",
        )
    if candidate >= champion + margin:
        return PromotionDecision(
            CHAMPION,
            f"{metric} {candidate:.4f} beats the champion's {champion:.4f} on the same holdout "
            f"by at least {margin}",
        )
    return PromotionDecision(
        CHALLENGER,
        f"{metric} {candidate:.4f} does not beat the champion's {champion:.4f} on the same "
        f"holdout by {margin}",
    )


def champion_version(client, name: str):
    """The model version behind ``@champion``, or None when there is none (or no model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def champion_score(name: str, score: Callable[[object], float]) -> float | None:
    """Load ``models:/<name>@champion`` and score it on the caller's holdout, or None.

    A champion that cannot be scored on today's holdout (say the feature set changed) counts as
    absent only for comparison purposes; the caller then falls back to the baseline gate.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow.sklearn.load_model(f"models:/{name}@{CHAMPION}")
    except MlflowException:
        return None
    try:
        return float(score(model))
    except (KeyError, ValueError) as error:
        print(f"warning: champion of {name} cannot be scored on this holdout: {error}")
        return None


def register_and_promote(
    client,
    name: str,
    model_uri: str,
    run_id: str,
    candidate: float,
    baseline: float,
    champion: float | None,
    margin: float = DEFAULT_MARGIN,
    metric: str = "metric",
    baseline_margin: float | None = None,
    approval_required: bool = False,
) -> tuple[str, PromotionDecision]:
    """Register ``model_uri`` as a new version of ``name`` and set the alias the gate chooses;
    with ``approval_required`` a version the gate would promote waits as ``challenger``."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={"run_id": run_id})
    decision = decide_promotion(candidate, champion, baseline, margin, metric, baseline_margin)
    if approval_required and decision.alias == CHAMPION:
        decision = PromotionDecision(
            CHALLENGER, f"{decision.reason}; waits for a person's approval", pending=True
        )
        client.set_model_version_tag(name, version.version, APPROVAL_TAG, PENDING)
    client.set_registered_model_alias(name, decision.alias, version.version)
    client.set_model_version_tag(name, version.version, "promotion_reason", decision.reason)
    client.set_model_version_tag(name, version.version, metric, f"{candidate:.6f}")
    return str(version.version), decision


def approve(client, name: str, version: str, by: str | None) -> None:
    """A person approved: ``champion`` moves to ``version``; who and when are on its tags."""
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, APPROVAL_TAG, "approved")
    client.set_model_version_tag(name, version, "approved_by", by or "unknown")
    reason = client.get_model_version(name, version).tags.get("promotion_reason", "")
    client.set_model_version_tag(
        name, version, "promotion_reason", f"approved by {by or 'unknown'}: {reason}"
    )


def keep_champion(client, name: str, version: str, outcome: str, why: str) -> None:
    """Rejected, or no answer in time: the version stays ``challenger`` and says why; the
    champion (if any) is untouched. ``outcome`` is ``rejected`` or ``timed_out``."""
    client.set_model_version_tag(name, version, APPROVAL_TAG, outcome)
    client.set_model_version_tag(name, version, "promotion_reason", why)
